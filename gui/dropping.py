"""What a drop, an Open dialog or the command line hands the app: images in, everything else counted."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QMimeData, QUrl

from model.images import IMAGE_EXTENSIONS, collect_images


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[str], list[str]]:
    """(images, skipped): folders scanned recursively; non-image files skipped, not loaded."""
    images, skipped = collect_images(paths)
    keep = [str(p) for p in images if p.suffix.lower() in IMAGE_EXTENSIONS]
    skipped_all = [str(p) for p in skipped] + [str(p) for p in images if p.suffix.lower() not in IMAGE_EXTENSIONS]
    return keep, skipped_all


def local_paths(mime: QMimeData) -> list[str]:
    """Local files and folders in a drag's data (remote URLs are ignored)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if isinstance(u, QUrl) and u.isLocalFile()]
