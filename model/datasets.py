"""A labelled folder (one sub-folder per class), checked before anything trains or evaluates on it.

``check_folder`` decodes every picture once, in threads, and sorts what it
finds into usable pictures, unreadable ones (with the reason) and things
ignored on purpose (hidden files and folders, ``__MACOSX``, pictures at the
top level).  It refuses, with a ``DataError`` naming the folder, what no
training could use: a missing folder, fewer than two classes, a class with
fewer than two usable pictures.  Nested folders inside a class folder belong
to that class.  Shared by training, evaluation and the folder audit.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.errors import DenseLensError
from model.images import IMAGE_EXTENSIONS, load_image, os_reason

IGNORED_FOLDERS = frozenset({"__MACOSX", "__pycache__"})
MIN_IMAGES_PER_CLASS = 2  # one to train on, one to validate
FEW_IMAGES = 10  # a class under this gets a warning
IMBALANCE = 5.0  # largest / smallest class above this gets a warning (and balanced training)
CHECK_WORKERS = 4
LOOSE_PICTURE = "picture at the top level (not in a class folder)"

Progress = Callable[[int, int], None]


class DataError(DenseLensError):
    """A folder no training or evaluation can use; the message names it and says why."""


@dataclass
class DataCheck:
    """What a labelled folder holds."""

    root: Path
    classes: list[str]
    files: list[tuple[Path, int]]  # usable pictures and their class index, sorted by class then path
    bad: list[tuple[Path, str]] = field(default_factory=list)  # unreadable pictures and why
    ignored: list[tuple[Path, str]] = field(default_factory=list)  # left out on purpose, and why
    warnings: list[str] = field(default_factory=list)

    @property
    def counts(self) -> list[int]:
        counts = [0] * len(self.classes)
        for _, label in self.files:
            counts[label] += 1
        return counts

    @property
    def imbalanced(self) -> bool:
        return imbalanced(self.counts)

    def summary(self) -> list[str]:
        """Lines a person reads before training: classes and counts, then what was left out."""
        lines = [f"{len(self.files)} pictures in {len(self.classes)} classes in {self.root}"]
        lines += [f"  {name}: {count}" for name, count in zip(self.classes, self.counts)]
        if self.bad:
            lines.append(f"{len(self.bad)} unreadable pictures skipped:")
            lines += [f"  {reason}" for _, reason in self.bad]
        if self.ignored:
            lines.append(f"{len(self.ignored)} entries ignored:")
            lines += [f"  {path}: {why}" for path, why in self.ignored]
        lines += [f"warning: {w}" for w in self.warnings]
        return lines

    def to_dict(self) -> dict:
        return {"folder": str(self.root), "classes": [{"name": n, "count": c} for n, c in
                                                      zip(self.classes, self.counts)],
                "bad": [{"path": str(p), "reason": r} for p, r in self.bad],
                "ignored": [{"path": str(p), "reason": r} for p, r in self.ignored],
                "warnings": list(self.warnings)}


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in IGNORED_FOLDERS


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def _class_folders(root: Path, ignored: list[tuple[Path, str]]) -> list[str]:
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not _is_dir(root):
        raise DataError(f"{root}: not a folder; give a folder with one sub-folder of pictures per class")
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as e:
        raise DataError(f"{root}: cannot read the folder ({os_reason(e)})") from None
    classes = []
    for entry in entries:
        path = Path(entry.path)
        if _hidden(entry.name):
            ignored.append((path, "hidden or system entry"))
        elif _is_dir(path):
            classes.append(entry.name)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            ignored.append((path, LOOSE_PICTURE))
    return classes


def _class_files(folder: Path, ignored: list[tuple[Path, str]], bad: list[tuple[Path, str]]) -> list[Path]:
    found: list[Path] = []

    def unreadable(error: OSError) -> None:
        bad.append((Path(error.filename or folder), f"{error.filename or folder}: cannot read the folder "
                                                     f"({os_reason(error)})"))

    for dirpath, dirs, names in os.walk(folder, onerror=unreadable):
        for d in [d for d in dirs if _hidden(d)]:
            ignored.append((Path(dirpath) / d, "hidden or system folder"))
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        for name in sorted(names):
            path = Path(dirpath) / name
            if name.startswith("."):
                if path.suffix.lower() in IMAGE_EXTENSIONS:
                    ignored.append((path, "hidden file"))
            elif path.suffix.lower() in IMAGE_EXTENSIONS:
                found.append(path)
    return found


def _decodes(path: Path) -> str | None:
    try:
        load_image(path)
    except DenseLensError as e:
        return str(e)
    return None


def check_folder(root: str | Path, progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
                 class_names: Sequence[str] | None = None, min_per_class: int = MIN_IMAGES_PER_CLASS,
                 workers: int = CHECK_WORKERS, decode: bool = True) -> DataCheck:
    """Scan and decode a folder per class; refuse what cannot be used (``DataError``).

    ``class_names``: the classes to keep, in this order (a model's); folders
    named otherwise are reported as ignored.  ``min_per_class``: usable
    pictures every class needs (0 when evaluating: an empty class is fine).
    ``decode``: False trusts the file names (for callers that decode every
    picture anyway and report the ones that fail).
    """
    root = Path(root)
    ignored: list[tuple[Path, str]] = []
    bad: list[tuple[Path, str]] = []
    folders = _class_folders(root, ignored)
    if not folders:
        loose = sum(why == LOOSE_PICTURE for _, why in ignored)
        if loose:
            raise DataError(f"{root}: its {loose} picture{'s' * (loose != 1)} lie directly in the folder; put each "
                            "class's pictures in a sub-folder named after the class")
        raise DataError(f"{root}: the folder {'is empty' if not ignored else 'has no sub-folders'}; it needs one "
                        "sub-folder of pictures per class")
    if class_names is None:
        classes = folders
    else:
        classes = list(class_names)
        # a folder named "été" may come back decomposed (macOS): compare composed forms
        wanted = {unicodedata.normalize("NFC", name): name for name in classes}
        for name in folders:
            if unicodedata.normalize("NFC", name) not in wanted:
                ignored.append((root / name, "not one of the model's classes"))
        named = {name: wanted[unicodedata.normalize("NFC", name)] for name in folders
                 if unicodedata.normalize("NFC", name) in wanted}
        folders = list(named)
        if not folders:
            raise DataError(f"{root}: no sub-folder is named after one of the model's classes "
                            f"({', '.join(classes[:8])}{', ...' if len(classes) > 8 else ''})")
    if class_names is None and len(classes) < 2:
        raise DataError(f"{root}: needs at least two sub-folders of pictures, one per class "
                        f"(found {len(classes)})")
    class_of = named if class_names is not None else {name: name for name in folders}
    candidates = [(path, classes.index(class_of[name])) for name in folders
                  for path in _class_files(root / name, ignored, bad)]
    files: list[tuple[Path, int]] = [] if decode else candidates
    total = len(candidates) if decode else 0
    if progress:
        progress(0, total)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
        for done, ((path, label), problem) in enumerate(
                zip(candidates, pool.map(lambda c: _decodes(c[0]), candidates if decode else [])), start=1):
            if problem is None:
                files.append((path, label))
            else:
                bad.append((path, problem))
            if progress:
                progress(done, total)
            if cancelled and cancelled():
                pool.shutdown(wait=False, cancel_futures=True)
                raise DataError(f"{root}: the check was cancelled")
    check = DataCheck(root, classes, files, bad, ignored)
    counts = check.counts
    too_few = [f"{name} ({count})" for name, count in zip(classes, counts)
               if count < min_per_class and name in class_of.values()]
    if too_few:
        raise DataError(f"{root}: every class needs at least {min_per_class} readable pictures; too few in "
                        f"{', '.join(too_few)}")
    if not files:
        raise DataError(f"{root}: no readable pictures in the class folders")
    check.warnings += count_warnings(classes, counts)
    return check


def count_warnings(classes: Sequence[str], counts: Sequence[int]) -> list[str]:
    """Warnings about the pictures per class: a class with few (but some), classes far apart in size."""
    warnings = [f"class {name!r} has only {count} pictures; results on it will be unreliable"
                for name, count in zip(classes, counts) if 0 < count < FEW_IMAGES]
    if imbalanced(counts):
        present = [c for c in counts if c]
        warnings.append(f"the classes are imbalanced ({max(present)} vs {min(present)} pictures)")
    return warnings


def imbalanced(counts: Sequence[int]) -> bool:
    """Whether the largest class (of those with pictures) has over ``IMBALANCE`` times the smallest's."""
    present = [c for c in counts if c]
    return bool(present) and max(present) > IMBALANCE * min(present)


def stratified_split(files: Sequence[tuple[Path, int]], fraction: float,
                     seed: int) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """(train, validation): ``fraction`` of every class to validation (at least one, never all), seeded."""
    rng = np.random.default_rng(seed)
    train: list[tuple[Path, int]] = []
    val: list[tuple[Path, int]] = []
    for label in sorted({label for _, label in files}):
        members = [f for f in files if f[1] == label]
        order = rng.permutation(len(members))
        n_val = min(len(members) - 1, max(1, round(len(members) * fraction)))
        val += [members[i] for i in sorted(order[:n_val])]
        train += [members[i] for i in sorted(order[n_val:])]
    return train, val
