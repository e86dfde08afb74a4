"""What goes into the PyInstaller bundle: opt-in weights, files left out, the build's record.

``build.spec`` calls these; they are plain functions over names and paths, so ``make test`` checks them
without building anything (tests/test_bundle_contents.py).
"""

from __future__ import annotations

import platform
import re
from importlib import metadata
from pathlib import Path

WEIGHTS_ENV = "DENSELENS_BUNDLE_WEIGHTS"
BUILD_INFO = "build-info.json"  # written to assets/: read by --self-test


class BundleError(Exception):
    """The build cannot do what was asked (unknown model, weights not downloaded)."""


def weights_to_bundle(setting: str | None, cache: Path) -> list[Path]:
    """The ImageNet weight files named in ``DENSELENS_BUNDLE_WEIGHTS``; none when it is unset or empty.

    ``setting`` is a comma-separated list of registered ImageNet models (``densenet121,densenet169``)
    or ``all``.  Each file must already be in ``cache`` (torch's hub cache, where the app downloads
    it): a build never downloads, and never takes a file that was not asked for.
    """
    from model.zoo import MODELS

    imagenet = [name for name, entry in MODELS.items() if entry.imagenet]
    names = [n.strip() for n in (setting or "").split(",") if n.strip()]
    if names == ["all"]:
        names = imagenet
    files = []
    for name in dict.fromkeys(names):
        if name not in imagenet:
            raise BundleError(f"{WEIGHTS_ENV}: {name!r} is not an ImageNet model; use a comma-separated list "
                              f"of {', '.join(imagenet)}, or all")
        path = cache / MODELS[name].weights_file
        if not path.is_file():
            raise BundleError(f"{WEIGHTS_ENV}: {path} is missing; download it first, e.g. "
                              f"`python main.py classify --model {name} assets/samples/star.png`")
        files.append(path)
    return files


# Files the app never uses at run time, by their path inside the bundle ("/" separated).
_UNUSED = [
    (re.compile(r"^torch/bin/protoc"), "protobuf compiler (a build tool)"),
    (re.compile(r"^PySide6/(Qt/)?translations/"), "Qt translations (the app installs no QTranslator)"),
    # QtNetwork is excluded (build.spec): its library, and the plugins that are its only users.
    (re.compile(r"(^|/)(lib)?Qt6?Network(\.|$)|(^|/)QtNetwork\.framework/"), "QtNetwork (excluded)"),
    (re.compile(r"plugins/(platforms/(lib)?qvnc|generic/(lib)?qtuiotouchplugin)[^/]*$"),
     "Qt plugin that needs QtNetwork (VNC display, TUIO touch over UDP)"),
    (re.compile(r"plugins/(networkinformation|tls)/"), "Qt plugin that needs QtNetwork"),
]


def unused_reason(dest: str) -> str | None:
    """Why the file at ``dest`` (its path inside the bundle) is left out, or None to keep it."""
    path = dest.replace("\\", "/")
    for pattern, reason in _UNUSED:
        if pattern.search(path):
            return reason
    return None


def torch_build() -> str:
    """``cuda`` for a torch that needs NVIDIA's libraries, else ``cpu``; read from metadata, no import."""
    try:
        dist = metadata.distribution("torch")
    except metadata.PackageNotFoundError:
        return "none"
    if "+cpu" in dist.version:
        return "cpu"
    from packaging.requirements import Requirement  # PyInstaller's own dependency

    needs = [r for r in map(Requirement, dist.requires or []) if r.name.lower().startswith("nvidia")
             and (r.marker is None or r.marker.evaluate({"extra": ""}))]
    return "cuda" if needs else "cpu"


def build_info() -> dict:
    """What a bundle records about its builder: above all the glibc it needs (the builder's, at least)."""
    from gui.self_test import glibc_version  # the same reading --self-test reports

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"glibc": glibc_version(), "system": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "torch": version("torch"), "torch_build": torch_build(),
            "pyside6": version("PySide6_Essentials") or version("PySide6")}
