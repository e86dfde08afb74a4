"""The folder audit's choices (no torch here: the command line's help and the app's dialog read them)."""

from __future__ import annotations

ENGINES = {
    "local": "this process, in batches",
    "ray": "Ray Data actors that each hold the model (pip install 'ray[data]'); a local Ray unless an address",
}
LABEL_MODES = {
    "folders": "sub-folders name each picture's true class",
    "predicted": "each picture is audited for its predicted class",
}
