"""What a drop, an Open dialog or the command line hands the app: images in, everything else counted."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from PySide6.QtCore import QMimeData, QUrl

from model.images import IMAGE_EXTENSIONS, collect_images


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(images, skipped, problems): folders scanned recursively; non-image files skipped, not loaded;
    paths or sub-folders that cannot be read at all, with the reason (the others are kept)."""
    found = collect_images(paths)
    keep = [str(p) for p in found.images if p.suffix.lower() in IMAGE_EXTENSIONS]
    skipped = [str(p) for p in found.skipped]
    skipped += [str(p) for p in found.images if p.suffix.lower() not in IMAGE_EXTENSIONS]
    return keep, skipped, [(str(p), reason) for p, reason in found.problems]


def local_paths(mime: QMimeData) -> list[str]:
    """Local files and folders in a drag's data (remote URLs are ignored)."""
    if not mime.hasUrls():
        return []
    return [url_path(u) for u in mime.urls() if isinstance(u, QUrl) and u.isLocalFile()]


def url_path(url: QUrl) -> str:
    """The exact local path of a file URL.

    ``QUrl.toLocalFile`` decodes the URL's bytes as UTF-8 and replaces what is
    not (a Latin-1 ``caf%E9.png`` would become ``caf\ufffd.png``, another
    name); on POSIX the percent-encoded bytes are decoded as the file system
    does instead (``os.fsdecode``: undecodable bytes kept as surrogate escapes).
    """
    if os.name != "posix" or url.host():
        return url.toLocalFile()
    encoded_path = bytes(url.toEncoded()).decode("ascii", "replace")
    return os.fsdecode(unquote_to_bytes(urlsplit(encoded_path).path))
