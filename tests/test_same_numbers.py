"""The same picture, model and preprocessing give the same probabilities in classify, explain and the API."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import main
from model.classifier import DenseNetClassifier


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    """A large, detailed JPEG: the kind the folder path once decoded at reduced scale."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 255, (45, 60, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("photos") / "photo.jpg"
    Image.fromarray(noise).resize((2400, 1800), Image.Resampling.BICUBIC).save(path, quality=92)
    return str(path)


def _probabilities(predictions) -> dict[int, float]:
    return {p["index"]: p["probability"] for p in predictions}


@pytest.mark.parametrize("mode", ["full", "center-crop"])
def test_classify_explain_and_api_agree_within_1e5(photo, tmp_path, capsys, mode):
    clf = DenseNetClassifier.load("demo", device="cpu")
    api_predict = {p.index: p.probability for p in clf.predict(photo, topk=3, preprocess=mode)}
    api_batch = {p.index: p.probability for p in next(clf.predict_paths([photo], topk=3, preprocess=mode)).predictions}
    api_explain = {p.index: p.probability for p in clf.explain(photo, topk=3, preprocess=mode).predictions}

    assert main.main(["classify", photo, "--model", "demo", "--topk", "3", "--preprocess", mode, "--json",
                      "--quiet"]) == 0
    cli_classify = _probabilities(json.loads(capsys.readouterr().out)[0]["predictions"])
    assert main.main(["explain", photo, "--model", "demo", "--topk", "3", "--preprocess", mode, "--json",
                      "--quiet", "--out", str(tmp_path / "out")]) == 0
    cli_explain = _probabilities(json.loads(capsys.readouterr().out)[0]["predictions"])

    for other in (api_batch, api_explain, cli_classify, cli_explain):
        assert list(other) == list(api_predict)
        assert np.allclose(list(other.values()), list(api_predict.values()), atol=1e-5, rtol=0)
