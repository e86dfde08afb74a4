"""Choosing the compute device, falling back to the CPU with a warning instead of failing."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def available_devices() -> list[str]:
    """Every device this machine can run on, best first."""
    found = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if _mps_available():
        found.append("mps")
    return found + ["cpu"]


def device_name(device: torch.device) -> str:
    """A human-readable name ("NVIDIA H200", "Apple MPS", "CPU")."""
    if device.type == "cuda":
        try:
            return f"{torch.cuda.get_device_name(device)} ({device})"
        except (RuntimeError, AssertionError):  # driver gone since the device was chosen
            return str(device)
    return {"mps": "Apple MPS", "cpu": "CPU"}.get(device.type, str(device))


def resolve_device(spec: str = "auto") -> tuple[torch.device, str | None]:
    """Return (device, warning).  An unusable request falls back to the CPU with a warning."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda"), None
        if _mps_available():
            return torch.device("mps"), None
        return torch.device("cpu"), None
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ValueError(f"unknown device {spec!r}; choose from {', '.join(DEVICE_CHOICES)}") from None
    if device.type == "cpu":
        return device, None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return torch.device("cpu"), "CUDA was requested but is not available here; using the CPU"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return torch.device("cpu"), (f"{spec} does not exist ({torch.cuda.device_count()} CUDA "
                                         f"device(s) found); using the CPU")
        return device, None
    if device.type == "mps":
        if not _mps_available():
            return torch.device("cpu"), "Apple MPS was requested but is not available here; using the CPU"
        return device, None
    raise ValueError(f"unsupported device {spec!r}; choose from {', '.join(DEVICE_CHOICES)}")


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()
