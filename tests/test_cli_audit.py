"""``main.py audit``: the text report names what is flagged, --json prints audit.json, and usage errors exit 2."""

from __future__ import annotations

import json
import sys

import pytest

from cli.main import main as cli
from tests.conftest import usage_error
from tests.model.test_audit_ray import trained_with_marker
from tests.planted import PER_CLASS

SUMMARY_KEYS = {"model", "folder", "layer", "method", "labels", "images", "map_side", "classes", "errors", "ignored",
                "throughput"}
CLASS_KEYS = {"name", "count", "accuracy", "mean_heatmap", "clusters", "flags"}
FLAG_KEYS = {"kind", "box", "share", "images", "probability_drop", "control_drop", "tested", "confirmed"}


@pytest.fixture(scope="module")
def with_marker(tmp_path_factory):
    data, clf = trained_with_marker(tmp_path_factory.mktemp("marker"))
    return data, clf.weights_file




def test_text_report_names_the_flagged_class_and_its_drop(with_marker, tmp_path, capsys):
    data, model = with_marker
    out = tmp_path / "audit"
    assert cli(["audit", str(data), "--out", str(out), "--model", model, "--device", "cpu", "--quiet"]) == 0
    text = capsys.readouterr().out
    saved = json.loads((out / "audit.json").read_text())
    (flag,) = next(c for c in saved["classes"] if c["name"] == "square")["flags"]
    lines = text.splitlines()
    assert lines[0].startswith(f"{2 * PER_CLASS} pictures audited") and "engine local" in lines[0]
    square = next(i for i, line in enumerate(lines) if line.strip().startswith(f"square: {PER_CLASS} pictures"))
    flag_line = lines[square + 1]  # the flag sits under its class
    assert flag_line.strip().startswith("FLAG fixed-location at ")
    assert f"blurring it drops the class by {flag['probability_drop'] * 100:.0f} points" in flag_line
    assert f"(elsewhere {flag['control_drop'] * 100:.0f})" in flag_line
    assert lines[-1] == f"report: {out}/report.html"


def test_json_prints_the_audit_json_contract(with_marker, tmp_path, capsys):
    data, model = with_marker
    out = tmp_path / "audit"
    assert cli(["audit", str(data), "--out", str(out), "--model", model, "--device", "cpu", "--json",
                "--batch-size", "8"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "audit.json").read_text())
    assert set(printed) == SUMMARY_KEYS
    assert printed["labels"] == "folders" and printed["images"] == 2 * PER_CLASS and printed["errors"] == []
    assert [c["name"] for c in printed["classes"]] == ["circle", "square"]
    for c in printed["classes"]:
        assert set(c) >= CLASS_KEYS and c["count"] == PER_CLASS
        assert (out / c["mean_heatmap"]).is_file()
        for flag in c["flags"]:
            assert set(flag) >= FLAG_KEYS and len(flag["box"]) == 4
    assert printed["throughput"]["engine"] == "local" and printed["throughput"]["pictures"] == 2 * PER_CLASS


def test_ray_engine_without_ray_exits_2_with_the_pip_command(tiny_pth, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: find_spec and import fail
    (tmp_path / "pictures").mkdir()
    err = usage_error(["audit", str(tmp_path / "pictures"), "--out", str(tmp_path / "audit"), "--model", tiny_pth,
                       "--engine", "ray"], capsys)
    assert "pip install 'ray[data]'" in err
    assert not (tmp_path / "audit").exists()


def test_a_missing_folder_exits_2_naming_it(tiny_pth, tmp_path, capsys):
    missing = tmp_path / "no-such-pictures"
    err = usage_error(["audit", str(missing), "--out", str(tmp_path / "audit"), "--model", tiny_pth, "--quiet"],
                      capsys)
    assert str(missing) in err and "no such folder" in err


def test_ray_address_needs_the_ray_engine(tiny_pth, tmp_path, capsys):
    err = usage_error(["audit", str(tmp_path), "--out", str(tmp_path / "audit"), "--model", tiny_pth,
                       "--ray-address", "auto"], capsys)
    assert "--ray-address needs --engine ray" in err
