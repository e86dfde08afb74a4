"""The Linux desktop integration script puts a launcher and icons in the user's menu, and takes them out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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
