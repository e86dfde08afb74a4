"""DenseLens's engine: the DenseNet, loading, inference, explanation and rendering.

No Qt here.  Names are imported lazily so that ``import model`` is instant and
the GUI can show its window while torch is still importing.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DenseNetClassifier": "model.classifier",
    "Prediction": "model.classifier",
    "DenseNet": "model.densenet",
    "DenseNetConfig": "model.densenet",
    "densenet": "model.densenet",
    "densenet121": "model.densenet",
    "densenet161": "model.densenet",
    "densenet169": "model.densenet",
    "densenet201": "model.densenet",
    "describe": "model.architecture",
    "DenseLensError": "model.errors",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")
