"""Odd names and paths in the window: every row shows its own picture, one bad path loses nothing."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote_from_bytes

import numpy as np
from PySide6.QtCore import QMimeData, QUrl

from tests.conftest import save_image
from tests.gui.conftest import wait_classified, wait_explained


def _drop_urls(window, encoded_urls: list[bytes]) -> None:
    """A drop as a file manager sends it: text/uri-list with the names' bytes percent-encoded."""
    mime = QMimeData()
    mime.setData("text/uri-list", b"\r\n".join(encoded_urls) + b"\r\n")
    from gui.dropping import local_paths

    window.add_paths(local_paths(mime))


def test_latin1_name_row_shows_its_own_picture(make_window, model_file, tmp_path, qtbot):
    folder = os.fsencode(tmp_path)
    latin1 = os.fsdecode(folder + b"/caf\xe9.png")
    save_image(Path(latin1), size=(60, 40), color=(230, 20, 20))  # red
    plain = save_image(tmp_path / "caf.png", size=(60, 40), color=(20, 200, 20))  # green
    w = make_window(model_file)
    _drop_urls(w, [b"file://" + quote_from_bytes(folder + b"/caf\xe9.png").encode("ascii"),
                   QUrl.fromLocalFile(plain).toEncoded().data()])
    assert sorted(w.session.images) == sorted([latin1, plain])
    wait_classified(qtbot, w)
    row = next(i for i in range(w.images.count()) if w.images.path_of(w.images.item(i)) == latin1)
    assert w.images.item(row).text().startswith("caf\ufffd.png")
    w.images.setCurrentRow(row)
    wait_explained(qtbot, w, latin1)
    red, green, _ = w.session.explanation.picture.reshape(-1, 3).mean(axis=0)
    assert red > 200 and green < 50  # the Latin-1 file's own pixels, not caf.png's
    assert "caf\ufffd.png" in w.windowTitle()


def test_path_too_long_and_unreadable_folder_lose_nothing_else(make_window, model_file, tmp_path, qtbot,
                                                               monkeypatch):
    good = save_image(tmp_path / "good.png")
    save_image(tmp_path / "folder" / "a.png")
    locked = str(tmp_path / "folder" / "locked")
    save_image(Path(locked) / "b.png")
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": (_ for _ in ()).throw(
        PermissionError(13, "Permission denied", locked)) if os.fspath(path) == locked else real_scandir(path))
    too_long = str(tmp_path / ("y" * 5000 + ".png"))
    w = make_window(model_file)
    added, _ = w.add_paths([too_long, good, str(tmp_path / "folder")])
    assert added == 3 and w.images.paths() == [too_long, good, str(tmp_path / "folder" / "a.png")]
    message = w.statusBar().currentMessage()
    assert "1 could not be read" in message and "permission denied" in message
    wait_classified(qtbot, w)
    assert w.images.state(too_long) == "error" and "too long" in w.session.results[too_long].error
    assert w.images.state(good) == "done"
    assert np.isfinite(w.session.results[good].predictions[0].probability)
