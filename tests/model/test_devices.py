"""Device choice falls back to the CPU with a warning (running out of memory: test_out_of_memory.py)."""

from __future__ import annotations

import pytest
import torch

from model.classifier import DenseNetClassifier
from model.devices import resolve_device
from tests.conftest import make_tiny


def test_auto_picks_cpu_when_nothing_else(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == (torch.device("cpu"), None)


@pytest.mark.parametrize("spec", ["cuda", "cuda:3", "mps"])
def test_unavailable_accelerator_falls_back_with_warning(monkeypatch, spec):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    device, warning = resolve_device(spec)
    assert device == torch.device("cpu") and "using the CPU" in warning


def test_nonsense_device_is_a_usage_error():
    with pytest.raises(ValueError, match="auto, cpu"):
        resolve_device("tpu7")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_logits_match_cpu():
    model = make_tiny()
    cpu = DenseNetClassifier(model, list("abcd"), "cpu")
    x = torch.randn(2, 3, 32, 32)
    expected = cpu.logits(x)
    gpu = DenseNetClassifier(make_tiny(), list("abcd"), "cuda")
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.logits(x).cpu(), expected, atol=1e-4)
