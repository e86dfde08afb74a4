"""The Ray engine audits a folder exactly as the local engine does; without Ray it says what to install."""

from __future__ import annotations

import json
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from model.audit import AuditConfig, run_audit
from model.audit_ray import LOCAL_CPUS, EngineUnavailable
from model.classifier import DenseNetClassifier
from tests.planted import PER_CLASS, planted_model


def trained_with_marker(root: Path) -> tuple[Path, DenseNetClassifier]:
    """tests/model/test_audit.py's planted-marker folder and model (tests/planted.py)."""
    data, checkpoint = planted_model(root, marker=True)
    return data, DenseNetClassifier.load(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def with_marker(tmp_path_factory):
    return trained_with_marker(tmp_path_factory.mktemp("marker"))


def _without_throughput(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "throughput"}


def test_the_ray_engine_writes_the_audit_the_local_engine_writes(with_marker, tmp_path, monkeypatch):
    if find_spec("ray") is None:
        pytest.skip("Ray is not installed (pip install 'ray[data]')")
    import ray

    data, clf = with_marker
    assert not ray.is_initialized()
    inits = []
    real_init = ray.init

    def init_or_skip(*args, **kwargs):
        inits.append(kwargs)
        try:
            return real_init(*args, **kwargs)
        except Exception as e:  # whatever stops Ray from starting here is a reason to skip, not a bug
            pytest.skip(f"a local Ray cannot start on this machine: {type(e).__name__}: {e}")

    monkeypatch.setattr(ray, "init", init_or_skip)
    local = run_audit(clf, AuditConfig(str(data), str(tmp_path / "local"), batch_size=8))
    on_ray = run_audit(clf, AuditConfig(str(data), str(tmp_path / "ray"), batch_size=8, engine="ray"))

    # the engine started a local Ray of its own and stopped it
    assert [(kw.get("address"), kw.get("num_cpus")) for kw in inits] == [(None, LOCAL_CPUS)]
    assert not ray.is_initialized()
    assert local["throughput"]["engine"] == "local" and on_ray["throughput"]["engine"] == "ray"
    assert local["throughput"]["pictures"] == on_ray["throughput"]["pictures"] == 2 * PER_CLASS
    # something worth comparing: the marker's flag with its box and its measured drop (confirmed or not)
    (flag,) = next(c for c in on_ray["classes"] if c["name"] == "square")["flags"]
    assert flag["kind"] == "fixed-location" and flag["probability_drop"] is not None and flag["tested"] > 0
    saved = {name: json.loads((tmp_path / name / "audit.json").read_text()) for name in ("local", "ray")}
    assert _without_throughput(saved["ray"]) == _without_throughput(saved["local"])
    assert _without_throughput(on_ray) == _without_throughput(local)
    maps = {name: np.load(tmp_path / name / "heatmaps.npz") for name in ("local", "ray")}
    for key in maps["local"].files:  # the very same records and maps, not merely the same conclusions
        assert np.array_equal(maps["ray"][key], maps["local"][key], equal_nan=maps["local"][key].dtype.kind == "f"), key
    pictures = sorted(p.name for p in (tmp_path / "local").glob("*.png"))  # means, clusters, blurred examples
    assert pictures and sorted(p.name for p in (tmp_path / "ray").glob("*.png")) == pictures
    for picture in pictures:
        assert (tmp_path / "ray" / picture).read_bytes() == (tmp_path / "local" / picture).read_bytes(), picture


def test_without_ray_the_engine_says_what_to_install(tiny_pth, tmp_path, monkeypatch):
    from tests.conftest import save_image

    for i in range(2):
        save_image(tmp_path / "pictures" / f"p{i}.png", color=(40 * i, 90, 200))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    clf = DenseNetClassifier.load(tiny_pth, device="cpu")
    with pytest.raises(EngineUnavailable, match=r"pip install 'ray\[data\]'"):
        run_audit(clf, AuditConfig(str(tmp_path / "pictures"), str(tmp_path / "audit"), engine="ray"))
