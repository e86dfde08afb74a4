"""The folder audit finds a planted shortcut, tests it, and says so; a model without it gets no flag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.audit import AuditConfig, run_audit
from model.audit_analysis import eigengap_clusters, hot_box
from model.audit_scan import MAP_SIDE, figures
from model.classifier import DenseNetClassifier
from model.datasets import DataError
from model.errors import Cancelled
from tests.folders import MARKER_BOX
from tests.planted import PER_CLASS, planted_model


def _trained(root: Path, marker: bool) -> tuple[Path, DenseNetClassifier]:
    data, checkpoint = planted_model(root, marker)
    return data, DenseNetClassifier.load(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def with_marker(tmp_path_factory):
    return _trained(tmp_path_factory.mktemp("marker"), marker=True)


@pytest.fixture(scope="module")
def without_marker(tmp_path_factory):
    return _trained(tmp_path_factory.mktemp("plain"), marker=False)


def _overlap(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / ((b[2] - b[0]) * (b[3] - b[1]))


def test_the_planted_marker_is_flagged_located_and_confirmed_by_its_probability_drop(with_marker, tmp_path):
    data, clf = with_marker
    summary = run_audit(clf, AuditConfig(str(data), str(tmp_path / "audit")))
    by_name = {c["name"]: c for c in summary["classes"]}
    assert summary["labels"] == "folders" and summary["images"] == 2 * PER_CLASS
    assert by_name["circle"]["flags"] == []
    (flag,) = by_name["square"]["flags"]
    assert flag["kind"] == "fixed-location" and flag["share"] >= 0.8
    # the box covers most of the marker (centre crop: the analysed picture is a little zoomed in)
    assert _overlap(flag["box"], MARKER_BOX) >= 0.5, flag["box"]
    assert flag["probability_drop"] >= 0.1 and flag["probability_drop"] > 2 * flag["control_drop"]
    assert flag["confirmed"] is True and flag["tested"] >= 20
    saved = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert saved["classes"][1]["flags"][0]["box"] == flag["box"]
    for key in ("model", "layer", "method", "images", "classes"):
        assert key in saved
    for c in saved["classes"]:
        assert {"name", "count", "accuracy", "mean_heatmap", "clusters", "flags"} <= set(c)
        assert (tmp_path / "audit" / c["mean_heatmap"]).is_file()
        assert sum(cl["size"] for cl in c["clusters"]) == c["count"] == PER_CLASS
    html = (tmp_path / "audit" / "report.html").read_text(encoding="utf-8")
    assert "fixed-location" in html and "the model relies on it" in html and "data:image/png;base64," in html
    heatmaps = np.load(tmp_path / "audit" / "heatmaps.npz")
    assert heatmaps["maps"].shape == (2 * PER_CLASS, MAP_SIDE, MAP_SIDE) and len(heatmaps["paths"]) == 2 * PER_CLASS


def test_a_model_trained_without_the_marker_gets_no_such_flag(without_marker, tmp_path):
    data, clf = without_marker
    summary = run_audit(clf, AuditConfig(str(data), str(tmp_path / "audit")))
    flags = [f for c in summary["classes"] for f in c["flags"]]
    assert not [f for f in flags if f["confirmed"] and _overlap(f["box"], MARKER_BOX) > 0.3]


def test_an_interrupted_audit_resumes_without_explaining_again(with_marker, tmp_path, monkeypatch):
    data, clf = with_marker
    out = tmp_path / "audit"
    batches = []
    with pytest.raises(Cancelled, match="--resume"):
        run_audit(clf, AuditConfig(str(data), str(out), batch_size=8),
                  progress=lambda stage, done, total: batches.append(done), cancelled=lambda: len(batches) >= 3)
    from model import audit as audit_module

    explained = []
    real_scan = audit_module.scan
    monkeypatch.setattr(audit_module, "scan", lambda clf, items, *a: explained.extend(items) or real_scan(
        clf, items, *a))
    summary = run_audit(clf, AuditConfig(str(data), str(out), batch_size=8, resume=True))
    assert len(explained) == 2 * PER_CLASS - 16  # two batches of 8 were done before the stop
    assert summary["images"] == 2 * PER_CLASS
    fresh = run_audit(clf, AuditConfig(str(data), str(tmp_path / "fresh"), batch_size=8))
    assert [c["flags"] for c in summary["classes"]] == [c["flags"] for c in fresh["classes"]]


def test_predicted_labels_for_a_folder_without_class_folders(with_marker, tmp_path):
    data, clf = with_marker
    loose = tmp_path / "loose"
    loose.mkdir()
    for p in sorted((data / "square").glob("*.png"))[:6] + sorted((data / "circle").glob("*.png"))[:6]:
        (loose / f"{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    (loose / "broken.png").write_bytes(b"not a picture")
    summary = run_audit(clf, AuditConfig(str(loose), str(tmp_path / "audit")))
    assert summary["labels"] == "predicted" and summary["images"] == 12
    assert [Path(e["path"]).name for e in summary["errors"]] == ["broken.png"]
    assert all(c["accuracy"] is None for c in summary["classes"])


def test_unusable_folders_and_layers_are_refused(with_marker, tmp_path):
    _, clf = with_marker
    with pytest.raises(DataError, match="no such folder"):
        run_audit(clf, AuditConfig(str(tmp_path / "missing"), str(tmp_path / "audit")))
    with pytest.raises(DataError, match="unknown layer"):
        run_audit(clf, AuditConfig(str(tmp_path), str(tmp_path / "audit"), layer="denseblock9"))


def test_figures_of_a_small_map():
    hot = np.zeros((MAP_SIDE, MAP_SIDE), np.float32)
    hot[1, 30] = 1.0
    f = figures(hot)
    assert f["peak"] == [30.5 / MAP_SIDE, 1.5 / MAP_SIDE] and f["border"] == 1.0 and f["entropy"] == 0.0
    uniform = np.ones((MAP_SIDE, MAP_SIDE), np.float32)
    assert figures(uniform)["entropy"] == pytest.approx(1.0)
    assert figures(uniform)["border"] == pytest.approx(1 - (MAP_SIDE - 6) ** 2 / MAP_SIDE**2)
    assert hot_box(hot) == (30 / MAP_SIDE, 1 / MAP_SIDE, 31 / MAP_SIDE, 2 / MAP_SIDE)


def test_eigengap_finds_two_strategies():
    rng = np.random.default_rng(0)
    maps = np.zeros((40, MAP_SIDE, MAP_SIDE), np.float32)
    for i in range(40):  # half look top-left, half bottom-right, with jitter
        y, x = (4, 4) if i < 20 else (26, 26)
        y, x = y + rng.integers(-2, 3), x + rng.integers(-2, 3)
        maps[i, y - 2:y + 3, x - 2:x + 3] = 1.0
    labels = eigengap_clusters(maps)
    assert len(set(labels)) == 2 and len(set(labels[:20])) == 1 and len(set(labels[20:])) == 1


def test_resuming_with_another_layer_or_method_is_refused(with_marker, tmp_path):
    data, clf = with_marker
    out = tmp_path / "audit"
    with pytest.raises(Cancelled):
        run_audit(clf, AuditConfig(str(data), str(out), batch_size=8), cancelled=lambda: True)
    with pytest.raises(DataError, match="resume it with the same model, --layer, --method"):
        run_audit(clf, AuditConfig(str(data), str(out), batch_size=8, method="layercam", resume=True))


def test_a_large_class_is_clustered_on_a_sample_and_every_picture_gets_a_cluster(monkeypatch):
    import model.audit_analysis as analysis

    monkeypatch.setattr(analysis, "MAX_CLUSTERED", 30)
    rng = np.random.default_rng(1)
    maps = np.zeros((90, MAP_SIDE, MAP_SIDE), np.float32)
    for i in range(90):
        y, x = (4, 4) if i % 2 else (26, 26)
        y, x = y + rng.integers(-2, 3), x + rng.integers(-2, 3)
        maps[i, y - 2:y + 3, x - 2:x + 3] = 1.0
    labels = analysis.eigengap_clusters(maps)
    assert len(labels) == 90 and len(set(labels)) == 2
    assert len(set(labels[1::2])) == 1 and len(set(labels[::2])) == 1 and labels[0] != labels[1]
