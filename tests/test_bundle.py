"""The frozen app: build it from build.spec, start it, check it works (``make test-bundle``).

Marked ``bundle``: a build takes minutes and gigabytes (torch's CUDA build), so ``make test`` leaves it
out and ``make test-bundle`` runs it. Set DENSELENS_BUNDLE_DIR to test an existing build instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    existing = os.environ.get("DENSELENS_BUNDLE_DIR")
    if existing:
        return Path(existing)
    out = tmp_path_factory.mktemp("bundle")
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--distpath", str(out / "dist"),
                    "--workpath", str(out / "build"), str(ROOT / "build.spec")], check=True, cwd=ROOT,
                   timeout=1800, capture_output=True)
    return out / "dist" / "DenseLens"


def _clean_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "QT_"))}
    env.update(HOME=str(tmp), XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"))
    return env


def test_self_test_passes_without_python_path(bundle, tmp_path):
    run = subprocess.run([str(bundle / "denselens-cli"), "--self-test"], capture_output=True, text=True,
                         cwd=tmp_path, env=_clean_env(tmp_path), timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] and report["frozen"]
    steps = report["steps"]
    assert steps["torchvision_ops"] is True
    assert steps["classify"]["top"][0]["label"] == "star"
    assert steps["overlay"]["layer"].startswith("denseblock") and steps["window"]["visible"]


def test_cli_classifies_a_bundled_sample(bundle, tmp_path):
    sample = bundle / "_internal" / "assets" / "samples" / "circle.png"
    run = subprocess.run([str(bundle / "denselens-cli"), "classify", str(sample), "--model", "demo", "--json"],
                         capture_output=True, text=True, cwd=tmp_path, env=_clean_env(tmp_path), timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)[0]["predictions"][0]["label"] == "circle"


@pytest.mark.skipif(not shutil.which("xvfb-run") or not shutil.which("xdotool"), reason="needs xvfb and xdotool")
def test_gui_binary_shows_a_window_without_errors(bundle, tmp_path):
    script = tmp_path / "probe.sh"
    script.write_text(f"""
"{bundle / 'DenseLens'}" > "{tmp_path / 'out.log'}" 2>&1 &
pid=$!
for i in $(seq 1 300); do
  if xdotool search --onlyvisible --name '^DenseLens$' >/dev/null 2>&1; then echo shown; break; fi
  sleep 0.1
done
sleep 3
kill $pid; wait $pid 2>/dev/null || true
""")
    started = time.time()
    run = subprocess.run(["xvfb-run", "-a", "bash", str(script)], capture_output=True, text=True,
                         env=_clean_env(tmp_path), timeout=120)
    assert "shown" in run.stdout, run.stdout + run.stderr
    log = (tmp_path / "out.log").read_text()
    bad = [line for line in log.splitlines() if any(w in line for w in ("Traceback", "Error", "error:"))]
    assert not bad, log
    assert time.time() - started < 120
