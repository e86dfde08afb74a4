"""GUI fixtures: isolated settings, a fixed-seed model file, a window that always shuts its thread down."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import QCoreApplication, QSettings, QStandardPaths

from model.densenet import densenet
from tests.conftest import randomize_batchnorm, save_image

LABELS = ["apple", "banana", "cherry", "date", "elderberry", "fig"]


@pytest.fixture(autouse=True)
def isolated_settings(qapp, tmp_path):
    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("DenseLensTests")
    QCoreApplication.setApplicationName("DenseLensTests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    yield tmp_path / "settings"


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> str:
    """A four-block DenseNet with fixed-seed weights and six named classes."""
    torch.manual_seed(3)
    net = randomize_batchnorm(densenet(growth_rate=6, block_config=(2, 2, 2, 2), num_init_features=12,
                                       bn_size=2, num_classes=len(LABELS), stem="small"), seed=3)
    path = tmp_path_factory.mktemp("models") / "fruit.pth"
    torch.save({"state_dict": net.state_dict(), "class_names": LABELS,
                "preprocessing": {"input_size": 64}}, path)
    return str(path)


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "pictures"
    paths = [save_image(folder / "one.png", size=(90, 60), color=(220, 40, 40)),
             save_image(folder / "two.jpg", size=(64, 96), color=(30, 160, 60), fmt="JPEG")]
    return folder, paths


@pytest.fixture
def make_window(qtbot):
    from gui.main_window import MainWindow

    windows = []

    def make(model: str | None = None, **kw):
        w = MainWindow(autoload=False, **kw)
        qtbot.addWidget(w)
        windows.append(w)
        w.show()
        if model:
            with qtbot.waitSignal(w.modelChanged, timeout=60000):
                w.load_model(model)
        return w

    yield make
    for w in windows:  # no test may leave the engine thread running
        w.shutdown()
        assert w.thread.isFinished()


def wait_classified(qtbot, window, timeout=60000):
    qtbot.waitUntil(lambda: window.images.count() and
                    all(window.images.state(p) != "busy" for p in window.images.paths()), timeout=timeout)


def wait_explained(qtbot, window, path=None, timeout=60000):
    """Until the window has drawn the maps the session asks for (for ``path``, if given)."""
    s = window.session

    def drawn() -> bool:
        return (s.pending.get("explain") is None and not window._refresh_pending and s.has_current_maps()
                and (path is None or s.current_path == str(path)))

    qtbot.waitUntil(drawn, timeout=timeout)
