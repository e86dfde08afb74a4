"""Persisted preferences (QSettings) that never stop the app from opening.

Every value is read through a typed getter with a default and a validity
check, so a corrupt settings file or one from another version only resets
the values it cannot provide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from model.cam import METHODS
from model.render import COLORMAPS
from model.zoo import PREPROCESS_MODES

VERSION = 1


class Settings:
    def __init__(self, settings: QSettings | None = None) -> None:
        self.qs = settings or QSettings()
        try:
            self.ok = self.qs.status() == QSettings.Status.NoError
        except RuntimeError:
            self.ok = False

    def _get(self, key: str, default: Any, convert: Callable[[Any], Any], valid: Callable[[Any], bool]) -> Any:
        try:
            raw = self.qs.value(key, default)
            value = convert(raw)
            return value if valid(value) else default
        except (TypeError, ValueError, RuntimeError):
            return default

    def _set(self, key: str, value: Any) -> None:
        self.qs.setValue(key, value)

    # -- typed preferences --------------------------------------------------
    def model(self) -> str:
        return self._get("model/spec", "demo", str, bool)

    def set_model(self, spec: str) -> None:
        self._set("model/spec", spec)

    def device(self) -> str:
        return self._get("model/device", "auto", str, bool)

    def set_device(self, device: str) -> None:
        self._set("model/device", device)

    def recent_models(self) -> list[str]:
        return self._get("model/recent", [], lambda v: [str(x) for x in (v if isinstance(v, list) else [v])],
                         lambda v: all(v))[:8]

    def add_recent_model(self, path: str) -> None:
        recent = [p for p in self.recent_models() if p != path]
        self._set("model/recent", [path, *recent][:8])

    def method(self) -> str:
        return self._get("view/method", "gradcam", str, lambda v: v in METHODS)

    def colormap(self) -> str:
        return self._get("view/colormap", "jet", str, lambda v: v in COLORMAPS)

    def layer(self) -> str:
        return self._get("view/layer", "", str, lambda v: True)

    def opacity(self) -> int:
        return self._get("view/opacity", 50, int, lambda v: 0 <= v <= 100)

    def topk(self) -> int:
        return self._get("view/topk", 5, int, lambda v: 1 <= v <= 20)

    def preprocess(self) -> str:
        return self._get("view/preprocess", "full", str, lambda v: v in PREPROCESS_MODES)

    def all_taps(self) -> bool:
        return self._get("view/all_taps", False, lambda v: str(v).lower() in ("true", "1"), lambda v: True)

    def last_folder(self) -> str:
        return self._get("paths/last_folder", "", str, lambda v: True)

    def set_view(self, **values: Any) -> None:
        for key, value in values.items():
            self._set(f"view/{key}", value)

    def set_last_folder(self, folder: str) -> None:
        self._set("paths/last_folder", folder)

    def export_folder(self) -> str:
        return self._get("paths/export_folder", "", str, lambda v: True)

    def set_export_folder(self, folder: str) -> None:
        self._set("paths/export_folder", folder)

    def export_choices(self) -> dict[str, bool]:
        """The export dialog's ticked boxes, as last used (overlay only at first)."""
        defaults = {"overlay": True, "heatmap": False, "raw": False, "grid": False}
        return {kind: self._get(f"export/{kind}", default, lambda v: str(v).lower() in ("true", "1"),
                                lambda v: True) for kind, default in defaults.items()}

    def set_export_choices(self, choices: dict[str, bool]) -> None:
        for kind, on in choices.items():
            self._set(f"export/{kind}", bool(on))

    def state(self, key: str) -> QByteArray | None:
        value = self._get(f"window/{key}", None, lambda v: v, lambda v: isinstance(v, QByteArray))
        return value

    def set_state(self, key: str, value: QByteArray) -> None:
        self._set(f"window/{key}", value)

    def sync(self) -> None:
        self._set("version", VERSION)
        self.qs.sync()
