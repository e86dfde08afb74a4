"""What build.spec puts in the bundle: weights only on request, no files the app never uses, a build record."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from bundling import contents
from bundling.contents import BundleError, unused_reason, weights_to_bundle
from model.zoo import MODELS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache(tmp_path) -> Path:
    for name in ("densenet121", "densenet169"):
        (tmp_path / MODELS[name].weights_file).write_bytes(b"weights")
    return tmp_path


@pytest.mark.parametrize("setting", [None, "", " , "])
def test_no_weights_unless_asked_for_even_when_the_cache_has_them(cache, setting):
    assert weights_to_bundle(setting, cache) == []


def test_named_weights_come_from_the_cache(cache):
    files = weights_to_bundle("densenet169, densenet121,densenet169", cache)
    assert [f.name for f in files] == [MODELS["densenet169"].weights_file, MODELS["densenet121"].weights_file]


def test_all_needs_every_imagenet_file(cache):
    with pytest.raises(BundleError, match="densenet201"):
        weights_to_bundle("all", cache)


@pytest.mark.parametrize("setting, message", [("demo", "not an ImageNet model"), ("resnet50", "not an ImageNet"),
                                              ("/home/me/weights", "not an ImageNet model")])
def test_unknown_names_stop_the_build(cache, setting, message):
    with pytest.raises(BundleError, match=message):
        weights_to_bundle(setting, cache)


def test_weights_missing_from_the_cache_stop_the_build_with_how_to_get_them(cache):
    with pytest.raises(BundleError, match=r"densenet161-8d451a50\.pth is missing.*--model densenet161"):
        weights_to_bundle("densenet161", cache)


@pytest.mark.parametrize("dest", [
    "torch/bin/protoc", "torch/bin/protoc-3.21.12.0",
    "PySide6/Qt/translations/qtbase_de.qm", "PySide6/translations/qt_fr.qm",
    "libQt6Network.so.6", "PySide6/Qt/lib/libQt6Network.so.6", "PySide6\\Qt6Network.dll",
    "PySide6/Qt/lib/QtNetwork.framework/Versions/A/QtNetwork",
    "PySide6/Qt/plugins/platforms/libqvnc.so", "PySide6/Qt/plugins/generic/libqtuiotouchplugin.so",
    "PySide6/Qt/plugins/tls/libqopensslbackend.so",
])
def test_files_never_used_at_run_time_are_left_out(dest):
    assert unused_reason(dest)


@pytest.mark.parametrize("dest", [
    "torch/bin/torch_shm_manager", "torch/lib/libtorch_cpu.so", "torchvision/_C_stable.so",
    "PySide6/Qt/lib/libQt6Gui.so.6", "PySide6/Qt/plugins/platforms/libqxcb.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/generic/libqevdevmouseplugin.so",
    "assets/samples/star.png", "libQt6Widgets.so.6",
])
def test_files_the_app_uses_are_kept(dest):
    assert unused_reason(dest) is None


def test_build_record_names_the_builders_glibc():
    info = contents.build_info()
    if platform.libc_ver()[0] == "glibc":
        assert info["glibc"] == platform.libc_ver()[1]
    assert info["torch"] == metadata.version("torch")


class FakeTorch:
    def __init__(self, version: str, requires: list[str]) -> None:
        self.version, self.requires = version, requires


@pytest.mark.parametrize("version, requires, build", [
    ("2.14.1+cpu", ["filelock", "sympy>=1.13.3"], "cpu"),
    ("2.14.1", ["filelock", 'nvidia-cudnn-cu13==9.24.0.43; platform_system == "Linux"'], "cuda"),
    ("2.14.1", ['nvidia-cudnn-cu13==9.24.0.43; platform_system == "Plan9"'], "cpu"),
    ("2.14.1", ['opt-einsum>=3.3; extra == "opt-einsum"'], "cpu"),
])
def test_torch_build_is_read_from_metadata(monkeypatch, version, requires, build):
    if build == "cuda" and platform.system() != "Linux":
        pytest.skip("the CUDA requirements are Linux-only")
    monkeypatch.setattr(contents.metadata, "distribution", lambda name: FakeTorch(version, requires))
    assert contents.torch_build() == build


def test_build_spec_stops_at_once_on_weights_it_cannot_bundle(tmp_path):
    """build.spec reads DENSELENS_BUNDLE_WEIGHTS before any analysis: a bad value costs a second, not a build."""
    env = {**os.environ, contents.WEIGHTS_ENV: "densenet121", "TORCH_HOME": str(tmp_path / "empty")}
    run = subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--distpath", str(tmp_path / "dist"),
                          "--workpath", str(tmp_path / "build"), str(ROOT / "build.spec")], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=120)
    assert run.returncode != 0
    assert "build.spec: DENSELENS_BUNDLE_WEIGHTS:" in run.stderr and "densenet121-a639ec97.pth is missing" in run.stderr
    assert not list((tmp_path / "dist").rglob("*"))
