"""File ▸ Audit a folder…: progress and Cancel/Resume, results per class (flagged first), a flagged picture
opens in the main window with its class, errors as messages, quitting stops a running audit."""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QLabel

from gui.audit_view import output_kind
from gui.session import AuditRun, audit_class_order, flag_verdict
from tests.folders import shapes_folder
from tests.gui.conftest import wait_explained
from tests.planted import CLASSES, PER_CLASS, planted_model

TIMEOUT = 180_000


@pytest.fixture(scope="module")
def marker_model(tmp_path_factory) -> tuple[Path, str]:
    """A tiny model that learned a marker planted on every square (as tests/model/test_audit.py trains it)."""
    data, checkpoint = planted_model(tmp_path_factory.mktemp("audit-marker"), marker=True)
    return data, str(checkpoint)


def wait_ended(qtbot, view) -> None:
    qtbot.waitUntil(lambda: not view.busy, timeout=TIMEOUT)


def texts(view) -> str:
    return "\n".join(label.text() for label in view.detail.findChildren(QLabel) if label.isVisibleTo(view))


def click_row(qtbot, pictures, row: int) -> None:
    rect = pictures.visualItemRect(pictures.item(row))
    qtbot.mouseClick(pictures.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def gate_second_batch(monkeypatch, view) -> list[int]:
    """The audit's second batch waits until Cancel is pressed (so Cancel lands mid-run, every time); only once."""
    import model.audit as audit_module

    real, calls, gated = audit_module.scan, [], []

    def scan(clf, items, *args):
        calls.append(len(items))
        if len(calls) == 2 and not gated:
            gated.append(True)
            view.auditor.cancel.wait(60)
        return real(clf, items, *args)

    monkeypatch.setattr(audit_module, "scan", scan)
    return calls


def test_audit_shows_progress_then_the_flagged_class_first_and_its_pictures_open_in_the_main_window(
        make_window, marker_model, qtbot, monkeypatch):
    data, model = marker_model
    w = make_window(model)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(data)))
    w.audit_action.trigger()
    view = w.audit_view
    assert view is not None and view.isVisible()
    view.choose_folder()
    out = data.parent / "data-audit"
    assert view.out.text() == str(out)  # beside the folder
    assert view.labels.currentData() == "folders" and "2 sub-folders named after the model's classes" in \
        view.folder_note.text()
    assert view.layer.currentData() == "denseblock2" and view.method.currentData() == "gradcam"
    assert [view.method.itemData(i) for i in range(view.method.count())] == \
        ["gradcam", "gradcam++", "xgradcam", "layercam", "hirescam"]
    seen = []
    view.run.subscribe("progress", lambda _v: seen.append((view.status.text(), view.progress.isVisible())))
    assert view.start()
    wait_ended(qtbot, view)
    assert view.run.state == "finished", view.status.text()
    assert any(t.startswith("Explaining the pictures: ") and t.endswith("pictures/s") and shown for t, shown in seen)
    assert any(t.startswith("Analysing the classes") for t, _ in seen)
    assert view.status.text().startswith(
        f"{2 * PER_CLASS} pictures audited (Grad-CAM at denseblock2, true (folder) classes)")
    assert "1 of 2 classes flagged" in view.status.text() and not view.progress.isVisible()

    # the flagged class comes first, marked, and is shown
    assert [view.table.item(r, 0).text() for r in range(2)] == ["⚑ square", "circle"]
    assert view.run.chosen == CLASSES.index("square")
    (flag,) = view.run.chosen_class()["flags"]
    # the planted marker's drop is about 10 points for this tiny model, near the confirmation threshold:
    # the view must say whichever verdict the audit reached
    relies = flag["confirmed"]
    assert view.table.item(0, 3).text() == ("1 (relies on it)" if relies else "1")
    assert view.table.item(1, 3).text() == "0"
    # the layout shows new labels through a queued call: wait for the event loop to have run it
    qtbot.waitUntil(lambda: "drops the class's probability by" in texts(view))
    shown = texts(view)
    assert f"drops the class's probability by {flag['probability_drop'] * 100:.0f} points" in shown
    assert f"drops it by {flag['control_drop'] * 100:.0f} points" in shown
    (verdict,) = [lb.text() for lb in view.detail.findChildren(QLabel) if lb.accessibleName() == "Verdict"]
    assert verdict.startswith("Verdict: relies on it (" if relies else "Verdict: no real drop (")
    pictures = [lb.pixmap() for lb in view.detail.findChildren(QLabel) if not lb.pixmap().isNull()]
    assert len(pictures) >= 4 and min(p.width() for p in pictures) >= 200  # mean, before, after, exemplars

    # clicking a picture of the flag shows it in the main window with the square's heatmap
    flag_list = view.picture_lists[0]
    assert [flag_list.item(i).text() for i in range(flag_list.count())] == [Path(p).name for p in flag["images"]]
    click_row(qtbot, flag_list, 2)
    path = flag["images"][2]
    s = w.session
    assert s.current_path == path and w.images.currentItem() is w.images.item_for(path)
    assert s.current_class == CLASSES.index("square") and s.layer == "denseblock2" and s.method == "gradcam"
    wait_explained(qtbot, w, path)
    assert w._drawn_class == CLASSES.index("square")

    # the other class: no flag; a picture of a cluster opens with the circle's heatmap
    view.choose_class(CLASSES.index("circle"))
    qtbot.waitUntil(lambda: "None: the evidence is neither at one place nor at the border" in texts(view))
    cluster_list = view.picture_lists[0]
    click_row(qtbot, cluster_list, 0)
    assert s.current_path == cluster_list.paths[0] and s.current_class == CLASSES.index("circle")
    assert len(s.images) == 2

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url.toLocalFile()) or True))
    view.report_button.click()
    assert opened == [str(out / "report.html")]


def test_cancel_stops_the_audit_and_resume_carries_on(make_window, model_file, tmp_path, qtbot, monkeypatch):
    folder = shapes_folder(tmp_path / "shapes", per_class=6, size=40)  # no class of the model: predicted labels
    w = make_window(model_file)
    view = w.open_audit()
    view.expert = {"batch_size": 4}
    view.set_folder(str(folder))
    assert view.labels.currentData() == "predicted"
    calls = gate_second_batch(monkeypatch, view)
    assert view.start()
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: view.status.text().startswith("Explaining the pictures: "), timeout=TIMEOUT)
    assert view.progress.isVisible() and view.cancel_button.isEnabled() and not view.start_button.isEnabled()
    view.cancel_button.click()
    assert view.status.text().endswith("cancelling after the current batch…")
    assert view.start_button.text() == "Start audit" and not view.start_button.isEnabled()  # not yet a new one
    wait_ended(qtbot, view)
    assert view.run.state == "cancelled" and view.start_button.text() == "Start a new audit"
    status = view.status.text()
    assert status.startswith("Cancelled after 8 of 24 pictures") and "Resume carries on" in status
    assert "--resume" in status and not view.progress.isVisible() and view.resume_button.isVisible()
    assert view.thread.isRunning() and view.start_button.isEnabled()
    out = Path(view.run.config["out"])
    assert len((out / "records.jsonl").read_text().splitlines()) == 8 and not (out / "audit.json").exists()

    calls.clear()
    view.resume_button.click()
    wait_ended(qtbot, view)
    assert view.run.state == "finished" and view.run.config["resume"] is True
    assert sum(calls) == 16 and view.run.summary["images"] == 24  # only what was left is explained
    assert view.status.text().startswith("24 pictures audited") and "16 explained at" in view.status.text()


def test_errors_arrive_as_messages_in_the_view(make_window, model_file, tmp_path, qtbot, monkeypatch):
    w = make_window(model_file)
    view = w.open_audit()

    def audit(folder, out=None) -> str:
        view.set_folder(str(folder))
        if out is not None:
            view.set_output(str(out))
        assert view.start()
        wait_ended(qtbot, view)
        assert view.run.state == "failed" and "Traceback" not in view.status.text()
        return view.status.text()

    (tmp_path / "empty").mkdir()
    assert "no pictures to audit" in audit(tmp_path / "empty")
    assert "no such folder" in audit(tmp_path / "missing", tmp_path / "out1")
    folder = shapes_folder(tmp_path / "shapes", per_class=2, size=40)
    (tmp_path / "file.txt").write_text("a file, not a folder")
    message = audit(folder, tmp_path / "file.txt" / "out")
    assert message.startswith(f"Cannot write the audit into {tmp_path / 'file.txt' / 'out'}")

    from model.audit_store import AuditStore

    def full(store, records, maps):
        raise OSError(errno.ENOSPC, "No space left on device", str(store.records_path))

    monkeypatch.setattr(AuditStore, "add", full)
    message = audit(folder, tmp_path / "out2")
    assert message == f"Cannot write the audit into {tmp_path / 'out2'}: No space left on device."
    assert not view.resume_button.isVisible() and view.start_button.isEnabled() and w.isVisible()


def test_a_report_folder_in_use_is_reused_only_after_asking(make_window, model_file, tmp_path, qtbot):
    folder = shapes_folder(tmp_path / "shapes", per_class=2, size=40)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    w = make_window(model_file)
    view = w.open_audit()
    view.set_folder(str(folder))
    asked = []
    view.ask_reuse = lambda kind, out: (asked.append(kind), None)[1]
    view.set_output(str(other))
    assert not view.start() and asked == ["other"] and view.run.state == "idle"
    assert (other / "notes.txt").read_text() == "mine"
    view.set_output(str(tmp_path / "shapes-audit"))
    assert view.start() and asked == ["other"]  # a new folder: no question
    wait_ended(qtbot, view)
    assert view.run.state == "finished"
    view.ask_reuse = lambda kind, out: (asked.append(kind), "resume")[1]
    assert view.start()
    wait_ended(qtbot, view)
    assert asked == ["other", "previous"] and view.run.config["resume"] is True
    assert view.run.summary["throughput"]["pictures"] == 0 and "nothing left to explain" in view.status.text()


def test_quitting_during_an_audit_asks_then_stops_it(make_window, model_file, tmp_path, qtbot, monkeypatch):
    folder = shapes_folder(tmp_path / "shapes", per_class=6, size=40)
    w = make_window(model_file)
    view = w.open_audit()
    view.expert = {"batch_size": 4}
    view.set_folder(str(folder))
    calls = gate_second_batch(monkeypatch, view)
    view.start()
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=TIMEOUT)
    view.close()
    assert not view.isVisible() and view.run.running  # closing the view hides it; the audit goes on
    assert w.open_audit() is view and view.isVisible()
    answers = []
    w.confirm_stop_audit = lambda: (answers.append("keep"), False)[1]
    w.close()
    assert answers == ["keep"] and w.isVisible() and view.thread.isRunning()
    w.confirm_stop_audit = lambda: True
    started = time.perf_counter()
    w.close()
    assert not w.isVisible() and view.thread.isFinished() and w.thread.isFinished()
    assert time.perf_counter() - started < 60
    assert (Path(view.run.config["out"]) / "records.jsonl").is_file()  # what was explained stays


# -- plain parts ---------------------------------------------------------------------------------
def test_report_folder_kinds(tmp_path):
    folder = tmp_path / "pics"
    (folder / "a").mkdir(parents=True)
    out = tmp_path / "pics-audit"
    assert output_kind(str(out), str(folder)) == "new"
    out.mkdir()
    assert output_kind(str(out), str(folder)) == "new"  # empty
    (out / "records.jsonl").write_text(json.dumps({"path": str(folder / "a" / "x.png"), "part": 0}) + "\n")
    assert output_kind(str(out), str(folder)) == "previous"  # a stopped audit of it
    assert output_kind(str(out), str(tmp_path / "elsewhere")) == "other"
    (out / "records.jsonl").unlink()
    (out / "audit.json").write_text(json.dumps({"folder": str(folder)}))
    assert output_kind(str(out), str(folder)) == "previous"  # a finished one
    (out / "audit.json").write_text("{broken")
    assert output_kind(str(out), str(folder)) == "other"


def test_pictures_per_second_count_only_this_run_and_flagged_classes_come_first():
    now = [10.0]
    run = AuditRun(lambda: now[0])
    run.start({"out": "o"}, "m.pth", ["a", "b", "c"])
    run.update("explaining", 20, 100)  # resumed: 20 were done before
    assert run.rate is None
    now[0] = 14.0
    run.update("explaining", 60, 100)
    assert run.rate == pytest.approx(10.0)
    classes = [{"index": 0, "flags": []}, {"index": 1, "flags": [{"confirmed": False, "probability_drop": 0.01}]},
               {"index": 2, "flags": [{"confirmed": True, "probability_drop": 0.4}]}]
    assert [c["index"] for c in audit_class_order(classes)] == [2, 1, 0]
    run.finished({"classes": classes, "throughput": {"pictures_per_second": 12.5}})
    assert run.chosen == 2 and run.rate == 12.5 and run.state == "finished"
    assert [flag_verdict(c["flags"][0]) for c in classes[1:]] == ["no real drop", "relies on it"]
    assert flag_verdict({"probability_drop": None, "confirmed": False}) == "not tested"
