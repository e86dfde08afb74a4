"""The Linux desktop integration script puts a launcher and icons in the user's menu, and takes them out."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "assets" / "desktop" / "install-linux.sh"


def test_install_and_uninstall_launcher(tmp_path):
    exe = tmp_path / "bundle" / "DenseLens"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "share")}
    subprocess.run(["bash", str(SCRIPT), str(exe)], check=True, env=env, capture_output=True)
    entry = (tmp_path / "share" / "applications" / "denselens.desktop").read_text()
    assert f'Exec="{exe}" %F' in entry and "Icon=denselens" in entry and "Terminal=false" in entry
    assert (tmp_path / "share" / "icons" / "hicolor" / "256x256" / "apps" / "denselens.png").is_file()
    subprocess.run(["bash", str(SCRIPT), "--uninstall"], check=True, env=env, capture_output=True)
    assert not (tmp_path / "share" / "applications" / "denselens.desktop").exists()
    assert not list((tmp_path / "share" / "icons").rglob("denselens.png"))


def test_refuses_a_missing_program(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "share")}
    run = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "nope")], env=env, capture_output=True, text=True)
    assert run.returncode == 2 and "not an executable" in run.stderr


def exec_argv(value: str) -> list[str]:
    """The command an Exec= value stands for, read by the Desktop Entry Specification's rules."""
    escapes = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    text = re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), "\\" + m.group(1)), value)  # string escapes
    args, current, i = [], None, 0
    while i < len(text):
        c = text[i]
        if c == '"':  # a quoted argument: \ escapes " ` $ and \
            current, i = current or "", i + 1
            while text[i] != '"':
                if text[i] == "\\" and text[i + 1] in '"`$\\':
                    current, i = current + text[i + 1], i + 2
                else:
                    current, i = current + text[i], i + 1
            i += 1
        elif c == " ":
            if current is not None:
                args.append(current)
            current, i = None, i + 1
        else:
            current, i = (current or "") + c, i + 1
    if current is not None:
        args.append(current)
    return [a.replace("%%", "%") for a in args if a != "%F"]


def _install(tmp_path: Path, folder: str) -> tuple[Path, str]:
    """A fake program in ``folder`` that records its own path when started; installs it, returns the entry."""
    exe = tmp_path / folder / "DenseLens"
    exe.parent.mkdir(parents=True)
    exe.write_text(f'#!/bin/sh\nprintf "%s" "$0" > "{tmp_path}/started"\n')
    exe.chmod(0o755)
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "share")}
    subprocess.run(["bash", str(SCRIPT), str(exe)], check=True, env=env, capture_output=True)
    return exe, (tmp_path / "share" / "applications" / "denselens.desktop").read_text()


NASTY = ["R&D | tools", "a|b&c", "Tom's \"apps\"", "$HOME `x`", "back\\slash", "two  spaces; (x) <y> #z *?~"]


@pytest.mark.parametrize("folder", NASTY)
def test_exec_line_names_the_program_whatever_its_folder(tmp_path, folder):
    exe, entry = _install(tmp_path, folder)
    exec_lines = [line for line in entry.splitlines() if line.startswith("Exec=")]
    assert len(exec_lines) == 1 and "Icon=denselens" in entry and "Terminal=false" in entry
    assert exec_argv(exec_lines[0].removeprefix("Exec=")) == [str(exe)]


@pytest.mark.skipif(not shutil.which("gio"), reason="needs GLib's gio")
@pytest.mark.parametrize("folder", ["R&D | tools", "Tom's \"apps\" $HOME `x` back\\slash", "100% done"])
def test_menu_entry_starts_the_program(tmp_path, folder):
    """GLib (GNOME's menus) reads the entry and starts the program: the real reader, not ours."""
    exe, _entry = _install(tmp_path, folder)
    entry = tmp_path / "share" / "applications" / "denselens.desktop"
    run = subprocess.run(["gio", "launch", str(entry)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    started = tmp_path / "started"
    for _ in range(100):
        if started.exists() and started.read_text():
            break
        time.sleep(0.05)
    assert Path(started.read_text()).resolve() == exe  # a % in the path goes through a link


def test_a_path_with_a_line_break_is_refused(tmp_path):
    exe = tmp_path / "a\nb" / "DenseLens"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "share")}
    run = subprocess.run(["bash", str(SCRIPT), str(exe)], env=env, capture_output=True, text=True)
    assert run.returncode == 2 and "line break" in run.stderr
    assert not (tmp_path / "share" / "applications" / "denselens.desktop").exists()
