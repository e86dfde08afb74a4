"""stdout that cannot be written (a full disk) ends the command with one line on stderr, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "samples" / "circle.png"

pytestmark = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")


def _run_into_full_disk(*args: str) -> subprocess.CompletedProcess:
    with open("/dev/full", "w") as full:
        return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], stdout=full, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": ""}, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("extra", [["--json"], []], ids=["json", "text"])
def test_classify_into_a_full_stdout_is_one_line_error(extra):
    run = _run_into_full_disk("classify", str(SAMPLE), "--model", "demo", "--device", "cpu", *extra)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert errors == ["main.py: error: cannot write to standard output: the disk is full"], run.stderr


def test_help_into_a_full_stdout_is_an_error_too():
    run = _run_into_full_disk("--help")
    assert run.returncode == 1 and run.stderr.strip() == "main.py: error: cannot write to standard output: " \
        "the disk is full"
