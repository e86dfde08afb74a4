"""Writing heatmaps and raw maps to disk: safe names, PNG metadata, atomic writes.

Every file is written to a temporary name in the destination folder and only
then renamed into place, so a failure (full disk, read-only folder) never
leaves a half-written file.  An existing file is never overwritten unless
asked: the new file gets a free name (``name_2.png``, ...) instead, and files
written earlier in the same run (``OutputNames``) are never overwritten at all.
Names keep their script (``chat été 猫`` stays readable); only what a file
system forbids or a shell misreads is replaced (``safe_component``).
"""

from __future__ import annotations

import errno
import io
import itertools
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from model.errors import ExportError

_SURROGATES = re.compile("[\ud800-\udfff]")
_RESERVED = {"con", "prn", "aux", "nul", "conin$", "conout$",
             *(f"{port}{n}" for port in ("com", "lpt") for n in ("1", "2", "3", "4", "5", "6", "7", "8", "9",
                                                                 "\u00b9", "\u00b2", "\u00b3"))}
# ASCII: the POSIX portable file-name characters (letters, digits, . _ -) and a few harmless ones; every
# other ASCII character is forbidden by some file system (/ \ < > : " | ? *, controls) or means something
# to a shell (space, $ ` ; & ' ! # ( ) [ ] { } ~ ^ %, ...).
_ASCII_KEPT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+=@")
# Beyond ASCII: letters, marks, digits, punctuation and symbols of every script stay; replaced are
# controls (Cc), surrogates (Cs: undecodable bytes of non-UTF-8 names), private use (Co), unassigned
# (Cn), separators (Z*: spaces of every width, line breaks) and format characters (Cf: bidi overrides
# can disguise a name) except the joiners that some scripts and emoji need.
_REPLACED_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Cf"})
_JOINERS = frozenset("\u200c\u200d")
_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "permission denied (read-only folder?)",
    errno.EPERM: "permission denied (read-only folder?)",
    errno.ENOENT: "the folder does not exist",
    errno.ENOTDIR: "the destination is not a folder",
}


def _kept(ch: str) -> bool:
    if ch < "\x80":
        return ch in _ASCII_KEPT
    return ch in _JOINERS or unicodedata.category(ch) not in _REPLACED_CATEGORIES


def truncate_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that fits ``max_bytes`` in UTF-8, never cutting a character."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text
    cut = data[:max_bytes].decode("utf-8", "ignore")
    return cut.rstrip("".join(_JOINERS))  # a joiner left dangling at the end would join nothing


def safe_component(text: str, max_bytes: int = 60) -> str:
    """A file-name part valid on Windows, macOS and Linux and harmless in a shell, keeping every script.

    ``chat été 猫`` -> ``chat_été_猫``.  Runs of replaced characters (separators, ``<>:"|?*``, controls,
    whitespace, undecodable bytes) become one ``_``; leading dots and dashes (hidden files, shell
    options) and trailing dots go; the result is at most ``max_bytes`` in UTF-8 and never a Windows
    device name (``CON`` -> ``_CON``).  Empty results become ``unnamed``.
    """
    text = "".join(ch if _kept(ch) else "\0" for ch in text)  # surrogates out before normalising
    text = unicodedata.normalize("NFC", text)  # one spelling of é on every system (macOS writes NFD)
    cleaned = re.sub("\0+", "_", text).lstrip("._-").rstrip("._") or "unnamed"
    cleaned = truncate_utf8(cleaned, max_bytes).rstrip("._") or "unnamed"
    return f"_{cleaned}" if cleaned.lower().split(".")[0] in _RESERVED else cleaned


def export_stem(image_stem: str, class_index: int, label: str, layer: str, method: str) -> str:
    """``<image>_<index>-<label>_<layer>_<method>``, made safe: at most about 180 bytes."""
    return "_".join([safe_component(image_stem), f"{class_index}-{safe_component(label, 40)}",
                     safe_component(layer, 32), method_slug(method)])


def method_slug(method: str) -> str:
    """``gradcam++`` -> ``gradcampp``: a method name fit for a file name."""
    return safe_component(method.replace("++", "pp"), 32)


def describe_os_error(error: OSError) -> str:
    return _REASONS.get(error.errno, error.strerror or str(error))


def _folder_problem(folder: Path) -> str:
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return "the folder does not exist" if candidate.is_dir() else f"{candidate} is not a folder"
    return "the folder does not exist"


class OutputNames:
    """The files written so far in one run (a batch, an export): later files never replace them.

    ``--overwrite`` replaces what an earlier run left, but two inputs of one run that map to the same
    name (``a/cat.png`` and ``b/cat.png``) must both survive: the second gets ``_2`` even when
    overwriting.  Names are compared as a case-insensitive, Unicode-normalised file system would.
    """

    def __init__(self) -> None:
        self._taken: set[str] = set()

    @staticmethod
    def _key(path: Path) -> str:
        return unicodedata.normalize("NFC", os.path.abspath(path)).casefold()

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, Path)) and self._key(Path(path)) in self._taken

    def __len__(self) -> int:
        return len(self._taken)

    def add(self, path: str | Path) -> None:
        self._taken.add(self._key(Path(path)))


def _candidates(path: Path, taken: OutputNames | None):
    # lazily: the first free name is usually the first one (building 10,000 names costs ~0.2 s)
    names = itertools.chain((path,), (path.with_name(f"{path.stem}_{n}{path.suffix}") for n in range(2, 10_000)))
    return (p for p in names if taken is None or p not in taken)


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask (reading it means setting it: done under a lock)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], overwrite: bool = False,
                 taken: OutputNames | None = None) -> Path:
    """Write via a temporary file in the same folder, then rename; return the final path.

    An existing file gets a free name (``name_2.png``) unless ``overwrite``; a name in ``taken`` (written
    earlier in the same run) is never replaced, even with ``overwrite``.  The final name joins ``taken``.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ExportError(f"cannot write {path}: {_folder_problem(folder)}")
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{truncate_utf8(path.stem, 80)}.", suffix=".part")
        if hasattr(os, "fchmod"):  # mkstemp makes 0600: give the file the mode the user's umask asks for
            os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        final = _commit(Path(tmp_name), path, overwrite, taken)
        tmp_name = None
    except OSError as e:
        raise ExportError(f"cannot write {path}: {describe_os_error(e)}") from e
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
    if taken is not None:
        taken.add(final)
    return final


def _commit(tmp: Path, dest: Path, overwrite: bool, taken: OutputNames | None) -> Path:
    candidates = _candidates(dest, taken)
    if overwrite:
        final = next(candidates)
        os.replace(tmp, final)
        return final
    for candidate in candidates:
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


def save_png(image: Image.Image, path: str | Path, text: dict | None = None, overwrite: bool = False,
             taken: OutputNames | None = None) -> Path:
    info = PngInfo()
    for key, value in (text or {}).items():
        # Undecodable bytes of non-UTF-8 paths (surrogates) cannot go into a UTF-8 iTXt chunk: spell them out.
        info.add_text(str(key), str(value).encode("utf-8", "backslashreplace").decode("utf-8"))
    buffer = io.BytesIO()  # encode first: an encoder error must not touch the disk
    image.save(buffer, format="PNG", pnginfo=info)
    return atomic_write(path, lambda f: f.write(buffer.getbuffer()), overwrite, taken)


def save_npy(array: np.ndarray, path: str | Path, overwrite: bool = False, taken: OutputNames | None = None) -> Path:
    return atomic_write(path, lambda f: np.save(f, np.asarray(array, dtype=np.float32)), overwrite, taken)


def escape_surrogates(text: str) -> str:
    """Undecodable bytes of non-UTF-8 file names (``\\udce9``) written as JSON-style escapes.

    Inside a JSON string this is the valid escape of the lone surrogate; in plain text it shows where the
    odd byte was.  Either way stdout never raises UnicodeEncodeError.
    """
    return _SURROGATES.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
