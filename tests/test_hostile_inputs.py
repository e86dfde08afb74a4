"""Odd and hostile files: every one gets a correct result or a clear message, in the CLI, the loader and the
GUI, and the rest of the batch completes. Random and mutated bytes never crash the loader (hypothesis)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cli.main import main as cli
from model.classifier import DenseNetClassifier
from model.errors import ImageLoadError
from model.images import load_image
from model.zoo import Preprocessing
from tests.conftest import make_tiny
from tests.hostile_corpus import build


@pytest.fixture
def corpus(tmp_path):
    return build(tmp_path / "corpus")


def check_outcome(case, predictions, error):
    name = case.path.name
    if case.outcome == "ok":
        assert error is None and predictions, f"{name}: {error}"
    elif case.outcome == "error":
        assert error and name in error and case.expect in error, f"{name}: {error!r}"
    else:
        assert (error and name in error) or predictions, name
    if error:
        assert "Traceback" not in error


def test_cli_reports_every_file_and_finishes_the_batch(corpus, tiny_pth, capsys):
    code = cli(["classify", *[str(c.path) for c in corpus], "--model", tiny_pth, "--json", "--quiet"])
    out = capsys.readouterr()
    records = {r["path"]: r for r in json.loads(out.out)}
    assert code == 1 and "Traceback" not in out.err
    files = [c for c in corpus if c.path.name != "folder.png"]  # a folder named x.png is scanned, and is empty
    assert len(records) == len(files)
    for case in files:
        r = records[str(case.path)]
        check_outcome(case, r["predictions"], r["error"])


def test_permission_denied_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(path)
    real_open = Image.open

    def guarded(fp, *a, **k):
        if str(fp) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(fp, *a, **k)

    monkeypatch.setattr(Image, "open", guarded)  # root ignores file modes: inject the error instead
    with pytest.raises(ImageLoadError, match="permission denied"):
        load_image(path)


@pytest.fixture(scope="module")
def tiny_clf():
    return DenseNetClassifier(make_tiny(), list("abcd"), "cpu", preprocessing=Preprocessing(input_size=48))


def _seed_images() -> list[bytes]:
    rng = np.random.default_rng(5)
    img = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    out = []
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"):
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        out.append(buf.getvalue())
    return out


SEEDS = _seed_images()


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(1, len(data)))]
    return bytes(data)


def _load_or_refuse(clf, tmp_path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        preds = clf.predict(path, topk=2)
    except ImageLoadError as e:
        assert str(path) in str(e)
        return
    assert len(preds) == 2 and all(0 <= p.probability <= 1 for p in preds)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=2048), suffix=st.sampled_from([".png", ".jpg", ".gif", ".bin"]))
def test_random_bytes_never_crash_the_classify_path(tiny_clf, tmp_path, data, suffix):
    _load_or_refuse(tiny_clf, tmp_path, data, suffix)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_mutated_images_never_crash_the_classify_path(tiny_clf, tmp_path, data):
    _load_or_refuse(tiny_clf, tmp_path, data, ".img")
