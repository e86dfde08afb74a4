"""Exceptions with messages meant for the person using the app."""

from __future__ import annotations


class DenseLensError(Exception):
    """Base class: the message is complete and can be shown to a user as is."""


class ImageLoadError(DenseLensError):
    """An image could not be read; the message names the file and the reason."""


class CheckpointError(DenseLensError):
    """A model file could not be loaded; nothing was loaded half-way."""


class WeightsUnavailableError(DenseLensError):
    """Pretrained weights are not cached and could not be downloaded."""


class DownloadCancelled(DenseLensError):
    """The user cancelled a download."""


class ExportError(DenseLensError):
    """An output file could not be written; no partial file was left."""


class Cancelled(DenseLensError):
    """The user stopped a long computation."""
