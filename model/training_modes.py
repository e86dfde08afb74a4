"""What ``train`` can train (no torch here: the command line's help and the app's dialog read it)."""

from __future__ import annotations

MODES = {
    "head": "a new classifier on frozen features: seconds after one pass over the pictures",
    "finetune": "the classifier first, then the last dense block and norm5 too, at a lower rate",
    "full": "every layer: the most accurate with many pictures, the slowest",
}


def default_mode(init: str) -> str:
    """``finetune`` from trained weights, ``full`` from scratch."""
    return "full" if init == "scratch" else "finetune"
