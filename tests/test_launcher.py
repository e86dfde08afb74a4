"""The bundle's entry point: the name it was started under decides, and every message uses that name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import launcher
from cli.main import program_name

ROOT = Path(__file__).resolve().parent.parent


def start_as(name: str, *args: str) -> subprocess.CompletedProcess:
    """Run the launcher as the frozen program called ``name`` would (sys.frozen set, argv[0] its path)."""
    code = (f"import sys; sys.frozen = True; sys.argv = [{f'/opt/DenseLens/{name}'!r}, *sys.argv[1:]]; "
            "import launcher; sys.exit(launcher.main())")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_cli_program_without_arguments_prints_the_help_instead_of_opening_the_app():
    run = start_as("denselens-cli")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: denselens-cli ") and "classify" in run.stdout
    assert "main.py" not in run.stdout


def test_usage_errors_name_the_program_the_user_ran():
    run = start_as("denselens-cli", "--frobnicate")
    assert run.returncode == 2
    assert "usage: denselens-cli" in run.stderr and "denselens-cli: error:" in run.stderr
    run = start_as("DenseLens", "--model", "nope")
    assert run.returncode == 2
    assert "usage: DenseLens [--model MODEL]" in run.stderr and "DenseLens: error:" in run.stderr
    assert "main.py" not in run.stderr


def test_command_errors_name_the_program_the_user_ran(tmp_path):
    run = start_as("denselens-cli", "classify", str(tmp_path / "x.png"), "--model", "nope")
    assert run.returncode == 2 and "denselens-cli" in run.stderr and "main.py" not in run.stderr


@pytest.mark.parametrize("argv0, name, cli", [
    ("/opt/DenseLens/denselens-cli", "denselens-cli", True),
    ("denselens-cli", "denselens-cli", True),
    (r"C:\Program Files\DenseLens\DENSELENS-CLI.EXE", "DENSELENS-CLI", True),
    ("/opt/DenseLens/DenseLens", "DenseLens", False),
    ("DenseLens.exe", "DenseLens", False),
])
def test_program_name_when_frozen(monkeypatch, argv0, name, cli):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "argv", [argv0.replace("\\", "/") if sys.platform != "win32" else argv0])
    assert program_name() == name and launcher.is_cli_name(program_name()) is cli


def test_program_name_from_source_is_main_py(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setattr(sys, "argv", ["/somewhere/pytest"])
    assert program_name() == "main.py"
