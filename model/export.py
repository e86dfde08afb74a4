"""Writing heatmaps and raw maps to disk: safe names, PNG metadata, atomic writes.

Every file is written to a temporary name in the destination folder and only
then renamed into place, so a failure (full disk, read-only folder) never
leaves a half-written file.  An existing file is never overwritten unless
asked: the new file gets a free name (``name_2.png``, ...) instead.
"""

from __future__ import annotations

import errno
import io
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from model.errors import ExportError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "permission denied (read-only folder?)",
    errno.EPERM: "permission denied (read-only folder?)",
    errno.ENOENT: "the folder does not exist",
    errno.ENOTDIR: "the destination is not a folder",
}


def safe_component(text: str, max_length: int = 60) -> str:
    """A file-name part that is valid on Windows, macOS and Linux."""
    cleaned = _UNSAFE.sub("_", text.strip()).strip("._") or "unnamed"
    cleaned = cleaned[:max_length].rstrip("._") or "unnamed"
    return f"_{cleaned}" if cleaned.lower().split(".")[0] in _RESERVED else cleaned


def export_stem(image_stem: str, class_index: int, label: str, layer: str, method: str) -> str:
    """``<image>_<index>-<label>_<layer>_<method>``, made safe."""
    return "_".join([safe_component(image_stem), f"{class_index}-{safe_component(label, 40)}",
                     safe_component(layer), method_slug(method)])


def method_slug(method: str) -> str:
    """``gradcam++`` -> ``gradcampp``: a method name fit for a file name."""
    return safe_component(method.replace("++", "pp"))


def describe_os_error(error: OSError) -> str:
    return _REASONS.get(error.errno, error.strerror or str(error))


def _folder_problem(folder: Path) -> str:
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return "the folder does not exist" if candidate.is_dir() else f"{candidate} is not a folder"
    return "the folder does not exist"


def _candidates(path: Path):
    yield path
    for n in range(2, 10_000):
        yield path.with_name(f"{path.stem}_{n}{path.suffix}")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], overwrite: bool = False) -> Path:
    """Write via a temporary file in the same folder, then rename; return the final path."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ExportError(f"cannot write {path}: {_folder_problem(folder)}")
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.stem[:40]}.", suffix=".part")
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        final = _commit(Path(tmp_name), path, overwrite)
        tmp_name = None
        return final
    except OSError as e:
        raise ExportError(f"cannot write {path}: {describe_os_error(e)}") from e
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)


def _commit(tmp: Path, dest: Path, overwrite: bool) -> Path:
    if overwrite:
        os.replace(tmp, dest)
        return dest
    for candidate in _candidates(dest):
        try:
            os.link(tmp, candidate)  # fails if the name is taken: no race with other writers
        except FileExistsError:
            continue
        except OSError:  # no hard links on this file system
            if candidate.exists():
                continue
            os.replace(tmp, candidate)
            return candidate
        tmp.unlink()
        return candidate
    raise OSError(errno.EEXIST, "too many files with this name")


def save_png(image: Image.Image, path: str | Path, text: dict | None = None, overwrite: bool = False) -> Path:
    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(str(key), str(value))
    buffer = io.BytesIO()  # encode first: an encoder error must not touch the disk
    image.save(buffer, format="PNG", pnginfo=info)
    return atomic_write(path, lambda f: f.write(buffer.getbuffer()), overwrite)


def save_npy(array: np.ndarray, path: str | Path, overwrite: bool = False) -> Path:
    return atomic_write(path, lambda f: np.save(f, np.asarray(array, dtype=np.float32)), overwrite)
