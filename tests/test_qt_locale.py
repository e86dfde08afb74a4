"""A UTF-8 locale is chosen before Qt starts, so Qt never warns about the C locale; nothing else changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gui.qt_locale import CATEGORIES, is_utf8_locale, use_utf8_locale

ROOT = Path(__file__).resolve().parent.parent
needs_c_utf8 = pytest.mark.skipif(not is_utf8_locale("C.UTF-8"), reason="no C.UTF-8 locale installed")


@needs_c_utf8
def test_lang_c_gets_a_utf8_character_type_and_keeps_the_rest():
    env = {"LANG": "C", "LC_MESSAGES": "POSIX"}
    assert use_utf8_locale(env) == "C.UTF-8"
    assert env == {"LANG": "C", "LC_MESSAGES": "POSIX", "LC_CTYPE": "C.UTF-8"}


@needs_c_utf8
def test_lc_all_c_is_spread_over_the_other_categories():
    env = {"LC_ALL": "C", "LANG": "C"}
    assert use_utf8_locale(env) == "C.UTF-8"
    assert "LC_ALL" not in env and env["LC_CTYPE"] == "C.UTF-8"
    assert all(env[c] == "C" for c in CATEGORIES)


@pytest.mark.parametrize("env", [{"LANG": "C.UTF-8"}, {"LC_ALL": "C.UTF-8", "LANG": "C"}, {"LC_CTYPE": "C.UTF-8"}])
def test_a_utf8_locale_is_left_alone(env):
    before = dict(env)
    assert use_utf8_locale(env) is None and env == before


def _stderr_lines(args: list[str], env_extra: dict) -> tuple[int, list[str], str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHON"))}
    env.update(env_extra, QT_QPA_PLATFORM="offscreen", PYTHONCOERCECLOCALE="0")  # as the frozen interpreter
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    return run.returncode, [line for line in run.stderr.splitlines() if line.strip()], run.stdout


@needs_c_utf8
@pytest.mark.slow
@pytest.mark.parametrize("env", [{"LANG": "C"}, {"LC_ALL": "C"}], ids=["LANG=C", "LC_ALL=C"])
def test_self_test_under_the_c_locale_prints_no_warning(env):
    code, lines, out = _stderr_lines(["--self-test"], env)
    assert code == 0, out
    assert lines == []  # Qt's four "Detected locale "C" ..." lines, or anything else, would be here
