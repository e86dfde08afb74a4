"""Odd names and paths through the command line: exact round trips, valid JSON, nothing lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import main
from tests.conftest import save_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def latin1_folder(tmp_path) -> Path:
    """``caf\\xe9.png`` (red, a Latin-1 name) beside ``caf.png`` (green)."""
    folder = tmp_path / "pics"
    folder.mkdir()
    save_image(Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.png")), size=(64, 48), color=(230, 20, 20))
    save_image(folder / "caf.png", size=(64, 48), color=(20, 200, 20))
    return folder


def _run(args: list[str], encoding: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": encoding, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "main.py", *args], capture_output=True, cwd=ROOT, env=env, timeout=300)


def test_non_utf8_name_gives_valid_json_that_round_trips(latin1_folder):
    out = _run(["classify", str(latin1_folder), "--model", "demo", "--json", "--quiet"], "utf-8:strict")
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    records = json.loads(out.stdout.decode("ascii"))  # ASCII-safe, hence valid UTF-8 too
    paths = sorted(os.fsencode(r["path"]) for r in records)
    assert paths == sorted([os.fsencode(latin1_folder) + b"/caf.png", os.fsencode(latin1_folder) + b"/caf\xe9.png"])
    assert all(r["predictions"] and r["error"] is None for r in records)


@pytest.mark.parametrize("as_json", [True, False])
def test_windows_console_encoding_never_crashes(tmp_path, as_json):
    picture = save_image(tmp_path / "chat été 猫.png", size=(64, 48))
    out = _run(["classify", picture, "--model", "demo", "--quiet", *(["--json"] if as_json else [])], "cp1252")
    assert out.returncode == 0 and b"Traceback" not in out.stderr, out.stderr.decode(errors="replace")
    text = out.stdout.decode("cp1252")
    if as_json:
        assert json.loads(text)[0]["path"] == picture
    else:
        assert "chat été" in text and "\\u732b" in text  # what cp1252 cannot show comes out escaped


def test_a_path_too_long_for_the_file_system_loses_no_other_file(tmp_path, capsys):
    good = save_image(tmp_path / "good.png")
    too_long = str(tmp_path / ("x" * 5000 + ".png"))
    code = main.main(["classify", too_long, good, "--model", "demo", "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    records = json.loads(captured.out)
    assert [r["path"] for r in records] == [too_long, good]
    assert "name is too long" in records[0]["error"] and not records[0]["predictions"]
    assert records[1]["predictions"] and records[1]["error"] is None


def test_unreadable_sub_folder_is_reported_and_the_rest_classified(tmp_path, capsys, monkeypatch):
    save_image(tmp_path / "pics" / "a.png")
    save_image(tmp_path / "pics" / "locked" / "b.png")
    locked = str(tmp_path / "pics" / "locked")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == locked:  # as a folder without read permission behaves for a normal user
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code = main.main(["classify", str(tmp_path / "pics"), "--model", "demo", "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0
    assert [Path(r["path"]).name for r in json.loads(captured.out)] == ["a.png"]
    assert f"warning: cannot read {locked}: permission denied" in captured.err
