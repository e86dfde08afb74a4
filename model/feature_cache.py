"""Pooled DenseNet features of pictures, cached on disk by file content (``train --mode head``).

A frozen network gives every picture the same feature vector each time, so
training only a new classifier needs one pass over the pictures.  Vectors are
keyed by the SHA-256 of the file's bytes inside a folder named after the
network's weights and the preprocessing: renaming or moving pictures keeps
their entries; editing one, or changing the start point, does not reuse a
stale vector.  The cache is a plain tensor file read with
``weights_only=True``, written atomically.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from model.errors import DenseLensError
from model.export import atomic_write
from model.zoo import Preprocessing

CACHE_ENV = "DENSELENS_CACHE"


def cache_root() -> Path:
    """``$DENSELENS_CACHE``, else ``$XDG_CACHE_HOME/denselens`` (``~/.cache/denselens``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "denselens"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def network_digest(state_dict: dict[str, torch.Tensor], preprocessing: Preprocessing) -> str:
    """What the features depend on: every feature tensor's values and the preprocessing."""
    h = hashlib.sha256(repr(preprocessing.to_dict()).encode())
    for key in sorted(k for k in state_dict if k.startswith("features.")):
        h.update(key.encode())
        h.update(state_dict[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


class FeatureCache:
    """Feature vectors by file digest for one network; ``save`` writes what was added."""

    def __init__(self, network: str, root: Path | None = None) -> None:
        self.path = (root or cache_root()) / "features" / f"{network}.pt"
        self.vectors: dict[str, torch.Tensor] = {}
        self.added = 0
        try:
            loaded = torch.load(self.path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError):  # absent or damaged: start afresh
            loaded = {}
        if isinstance(loaded, dict):
            self.vectors = {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}

    def get(self, digest: str) -> torch.Tensor | None:
        return self.vectors.get(digest)

    def put(self, digest: str, vector: torch.Tensor) -> None:
        self.vectors[digest] = vector.detach().cpu().float().clone()
        self.added += 1

    def save(self) -> None:
        """Write the cache if anything was added; a cache that cannot be written is only a lost speed-up."""
        if not self.added:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, lambda f: torch.save(self.vectors, f), overwrite=True)
        except (OSError, DenseLensError):
            return
        self.added = 0
