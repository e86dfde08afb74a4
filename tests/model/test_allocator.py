"""Explanations reuse freed memory instead of faulting in fresh pages every call (``model.allocator``)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from model import allocator

ROOT = Path(__file__).resolve().parents[2]
glibc_only = pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
                                reason="the thresholds are glibc's")

# A session's mix: top-5 at four blocks, a prediction, the top class at four blocks.  Page faults per round
# after two rounds of warm-up; glibc's own moving thresholds gave about 10,000 a round, retained memory none.
PROBE = """
import resource, sys
import torch
from PIL import Image
from model.classifier import DenseNetClassifier
from model.densenet import densenet121
torch.manual_seed(0)
clf = DenseNetClassifier(densenet121(), [f"c{i}" for i in range(1000)], "cpu")
picture = clf.prepare(Image.effect_noise((224, 224), 50).convert("RGB"))
blocks = ["denseblock1", "denseblock2", "denseblock3", "denseblock4"]
def session_round():
    clf.explain(picture, layers=blocks, classes=["top5"])
    clf.logits(picture.tensor[None])
    clf.explain(picture, layers=blocks)
session_round(); session_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    session_round()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3)
"""


@glibc_only
def test_thresholds_are_set_once_per_process():
    assert allocator.retain_freed_memory() is True
    assert allocator.retain_freed_memory() is True


@glibc_only
def test_explanations_fault_in_no_fresh_pages_once_warm(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    done = subprocess.run([sys.executable, str(probe)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr
    faults = float(done.stdout.split()[-1])
    assert faults < 500, f"{faults:.0f} page faults a round (about 10,000 with glibc's moving thresholds)"
