"""The frozen app, checked like a release: build it from build.spec, start it, check it works (``make test-bundle``).

Marked ``bundle``: a build takes minutes and gigabytes (torch's CUDA build), so ``make test`` leaves it
out and ``make test-bundle`` runs it. Set DENSELENS_BUNDLE_DIR to test an existing build instead. A
build made here, and the broken copy the negative test makes, are deleted when the module's tests end.
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
needs_xvfb = pytest.mark.skipif(not shutil.which("xvfb-run") or not shutil.which("xdotool"),
                                reason="needs xvfb and xdotool")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    existing = os.environ.get("DENSELENS_BUNDLE_DIR")
    if existing:
        yield Path(existing).resolve()
        return
    out = tmp_path_factory.mktemp("bundle")
    try:
        subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--distpath", str(out / "dist"),
                        "--workpath", str(out / "build"), str(ROOT / "build.spec")], check=True, cwd=ROOT,
                       timeout=1800, capture_output=True)
        yield out / "dist" / "DenseLens"
    finally:
        shutil.rmtree(out, ignore_errors=True)  # 4 GB: never left in the temporary folder


@pytest.fixture(scope="module")
def broken_bundle(bundle, tmp_path_factory) -> Path:
    """A copy of the bundle without torchvision's operator library (hard links: no gigabytes copied)."""
    out = tmp_path_factory.mktemp("broken")
    copy = out / "DenseLens"
    try:
        if subprocess.run(["cp", "-al", str(bundle), str(copy)], capture_output=True).returncode != 0:
            shutil.rmtree(copy, ignore_errors=True)  # another file system: links to the files, a real program
            subprocess.run(["cp", "-as", str(bundle), str(copy)], check=True, capture_output=True)
            (copy / "DenseLens").unlink()
            shutil.copy2(bundle / "DenseLens", copy / "DenseLens")
        ops = sorted((copy / "_internal").rglob("_C_stable.*"))
        assert ops, "torchvision/_C_stable.* is not in the bundle"
        for f in ops:
            f.unlink()
        yield copy
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _clean_env(tmp: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "QT_", "LC_", "LANG"))}
    env.update({"HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config"), "XDG_DATA_HOME": str(tmp / "data"),
                "LANG": "C.UTF-8", **extra})
    return env


def _run(args: list, tmp: Path, timeout: int = 300, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=tmp,
                          env=_clean_env(tmp, **extra), timeout=timeout)


def _gui_self_test(program: Path, tmp: Path) -> tuple[subprocess.CompletedProcess, dict | None]:
    run = _run(["xvfb-run", "-a", program, "--self-test", "--gui"], tmp)
    try:
        return run, json.loads(run.stdout)
    except ValueError:
        return run, None


def test_self_test_passes_without_python_path(bundle, tmp_path):
    run = _run([bundle / "denselens-cli", "--self-test"], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] and report["frozen"]
    steps = report["steps"]
    assert steps["torchvision_ops"] is True
    assert steps["classify"]["top"][0]["label"] == "star"
    assert steps["overlay"]["layer"].startswith("denseblock") and steps["window"]["visible"]
    assert report["glibc"]["needs"] == report["build"]["glibc"]  # the builder's, recorded by build.spec


@pytest.mark.parametrize("locale_env", [{"LANG": "C"}, {"LC_ALL": "C"}], ids=["LANG=C", "LC_ALL=C"])
def test_c_locale_start_prints_nothing_on_stderr(bundle, tmp_path, locale_env):
    run = _run([bundle / "denselens-cli", "--self-test"], tmp_path, **locale_env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [line for line in run.stderr.splitlines() if line.strip()] == []
    assert json.loads(run.stdout)["locale"]["ctype"].upper().replace("-", "").endswith("UTF8")


def test_cli_classifies_a_bundled_sample(bundle, tmp_path):
    sample = bundle / "_internal" / "assets" / "samples" / "circle.png"
    run = _run([bundle / "denselens-cli", "classify", sample, "--model", "demo", "--json"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)[0]["predictions"][0]["label"] == "circle"


def test_cli_trains_on_the_demo_shapes_with_their_photo_backgrounds(bundle, tmp_path):
    out = tmp_path / "shapes.pth"
    run = _run([bundle / "denselens-cli", "train", "--data", "shapes", "--out", out, "--epochs", "1",
                "--steps-per-epoch", "3", "--batch-size", "16", "--val-size", "16", "--workers", "0", "--json"],
               tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["checkpoint"] == str(out) and out.is_file()


def test_cli_without_arguments_prints_its_help(bundle, tmp_path):
    run = _run([bundle / "denselens-cli"], tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: denselens-cli ") and "main.py" not in run.stdout


def test_usage_errors_name_the_program_that_was_run(bundle, tmp_path):
    run = _run([bundle / "DenseLens", "--model", "nope"], tmp_path, timeout=60)
    assert run.returncode == 2 and "usage: DenseLens " in run.stderr and "DenseLens: error:" in run.stderr
    run = _run([bundle / "denselens-cli", "info", "--model", "nope"], tmp_path, timeout=60)
    assert run.returncode == 2 and "denselens-cli" in run.stderr and "main.py" not in run.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="Windows gets two executables (build.spec)")
def test_one_executable_two_names(bundle):
    assert (bundle / "denselens-cli").is_symlink() and os.readlink(bundle / "denselens-cli") == "DenseLens"
    programs = [f.name for f in bundle.iterdir() if f.is_file() and not f.is_symlink()]
    assert programs == ["DenseLens"]


def test_files_never_used_at_run_time_are_left_out(bundle):
    internal = bundle / "_internal"
    assert not list((internal / "torch" / "bin").glob("protoc*"))
    assert not (internal / "PySide6" / "Qt" / "translations").exists()
    assert not [p for p in internal.rglob("*Network*") if "Qt" in p.name], "QtNetwork is excluded"
    readelf = shutil.which("readelf")
    if readelf:  # nothing left behind needs the library that was dropped
        qt = [p for p in (internal / "PySide6").rglob("*.so*") if p.is_file()]
        needs = [p for p in qt if "libQt6Network" in subprocess.run([readelf, "-d", str(p)], capture_output=True,
                                                                      text=True).stdout]
        assert not needs


def test_weights_are_bundled_only_on_request(bundle):
    internal = bundle / "_internal" / "assets"
    record = json.loads((internal / "build-info.json").read_text())
    present = sorted(p.name for p in (internal / "weights").glob("*")) if (internal / "weights").exists() else []
    assert present == sorted(record["weights"])
    if not os.environ.get("DENSELENS_BUNDLE_DIR"):  # built here, without DENSELENS_BUNDLE_WEIGHTS
        assert os.environ.get("DENSELENS_BUNDLE_WEIGHTS") or present == []


@needs_xvfb
def test_gui_self_test_loads_the_model_and_classifies(bundle, tmp_path):
    run, report = _gui_self_test(bundle / "DenseLens", tmp_path)
    assert run.returncode == 0 and report and report["ok"], run.stdout + run.stderr
    steps = report["steps"]
    assert steps["platform"] == "xcb" and steps["window"]["exposed"]
    assert steps["model"]["spec"] == "demo" and steps["model"]["name"].startswith("Demo model")
    assert steps["classify"]["top"][0]["label"] == "star"
    assert steps["imagenet"]["classes"] == 1000  # through torchvision's class names
    assert [line for line in run.stderr.splitlines() if line.strip()] == []


@needs_xvfb
def test_gui_self_test_fails_without_torchvision_operators(broken_bundle, tmp_path):
    """The failure a plain build had: the app opens, the demo model works, every ImageNet model fails."""
    run, report = _gui_self_test(broken_bundle / "DenseLens", tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert report is not None and not report["ok"], run.stdout
    assert "failed to load" in report["error"] and "torchvision::nms" in report["error"], report["error"]


@needs_xvfb
@pytest.mark.parametrize("locale_env", [{}, {"LC_ALL": "C"}], ids=["UTF-8", "LC_ALL=C"])
def test_gui_binary_shows_a_window_and_stays_up_silently(bundle, tmp_path, locale_env):
    """The plain start a user makes: window within 30 s, still running 3 s later, nothing on stdout/stderr."""
    log = tmp_path / "out.log"
    script = tmp_path / "probe.sh"
    script.write_text(f"""
"{bundle / 'DenseLens'}" > "{log}" 2>&1 &
pid=$!
for i in $(seq 1 300); do
  if xdotool search --onlyvisible --name '^DenseLens$' >/dev/null 2>&1; then echo shown; break; fi
  sleep 0.1
done
sleep 3
kill -0 $pid && echo "still running"
kill $pid; wait $pid 2>/dev/null || true
""")
    started = time.time()
    run = subprocess.run(["xvfb-run", "-a", "bash", str(script)], capture_output=True, text=True,
                         env=_clean_env(tmp_path, **locale_env), timeout=120)
    assert "shown" in run.stdout and "still running" in run.stdout, run.stdout + run.stderr + log.read_text()
    assert log.read_text().strip() == ""
    assert time.time() - started < 120
