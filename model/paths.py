"""Where the app's files live, in a source checkout and in a PyInstaller bundle."""

from __future__ import annotations

import sys
from pathlib import Path


def app_root() -> Path:
    """The folder holding ``assets/``: the bundle's data folder when frozen."""
    bundle = getattr(sys, "_MEIPASS", None)
    return Path(bundle) if bundle else Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    return app_root() / "assets"


def demo_model_path() -> Path:
    """The bundled demo DenseNet (trained by ``main.py train``; see docs/)."""
    return assets_dir() / "models" / "demo.pth"
