"""Evaluating on a labelled folder: figures, records, mistakes, and the report files.

``colour_net`` is a tiny DenseNet wired by hand: its stem copies the red,
green and blue channels, the dense layers add nothing, the transition passes
them through, and the logit of class k is 10 times the mean of channel k.  A
plain-coloured picture is therefore classified by its dominant colour with a
probability known in closed form, so the confusion matrix, the figures and
the order of the mistakes are known before the evaluation runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model.classifier import DenseNetClassifier
from model.datasets import DataError, check_folder
from model.densenet import DenseNet, DenseNetConfig
from model.errors import Cancelled
from model.folder_evaluation import (
    FolderEvaluation,
    PictureResult,
    class_scores,
    confusion_matrix,
    drawable,
    evaluate_folder,
    render_confusion,
    row_normalised,
    write_report,
)
from model.zoo import Preprocessing
from tests.conftest import randomize_batchnorm

SCALE = 10.0
CONFIG = DenseNetConfig(growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=4, compression=0.5,
                        drop_rate=0.0, num_classes=3, stem="small")
COLOUR_PREPROCESSING = Preprocessing(32, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), mode="center-crop")
# class folder -> {file name: colour}; the expected outcome is spelled out in EXPECTED_CONFUSION.
HAND_MADE = {
    "a": {"red1.png": (230, 20, 20), "red2.png": (200, 30, 10), "red3.png": (250, 0, 0),
          "greenish.png": (90, 140, 20)},  # predicted b
    "b": {"green1.png": (10, 220, 30), "green2.png": (0, 200, 0)},
    "c": {"blue1.png": (20, 20, 240), "purple.png": (200, 60, 120)},  # purple: predicted a
}
EXPECTED_CONFUSION = [[3, 1, 0], [0, 2, 0], [1, 0, 1]]


def colour_net() -> DenseNet:
    model = DenseNet(CONFIG).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)
        for k in range(3):
            model.features.conv0.weight[k, k, 1, 1] = 1.0
            model.classifier.weight[k, k] = SCALE
        for i in range(8):
            model.features.transition1.conv.weight[i, i, 0, 0] = 1.0
    return model


def colour_classifier(labels=("a", "b", "c"), unfamiliar_threshold: float | None = None) -> DenseNetClassifier:
    return DenseNetClassifier(colour_net(), list(labels), "cpu", preprocessing=COLOUR_PREPROCESSING,
                              unfamiliar_threshold=unfamiliar_threshold)


def expected_probabilities(colour) -> np.ndarray:
    return torch.softmax(torch.tensor(colour, dtype=torch.float64) / 255.0 * SCALE, 0).numpy()


def make_folder(root: Path, layout: dict[str, dict[str, tuple[int, int, int]]], size=(40, 40)) -> Path:
    for folder, pictures in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, colour in pictures.items():
            Image.new("RGB", size, colour).save(root / folder / name)
    return root


@pytest.fixture
def hand_made(tmp_path) -> Path:
    return make_folder(tmp_path / "data", HAND_MADE)


@pytest.fixture(scope="module")
def clf() -> DenseNetClassifier:
    return colour_classifier()


def png_size(path: str | Path) -> tuple[int, int]:
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.load()
        return img.size


# -- the figures --------------------------------------------------------------
def test_precision_recall_f1_on_a_hand_made_confusion():
    # class 2 has a picture but is never predicted; class 3 neither occurs nor is predicted
    confusion = confusion_matrix([0, 0, 0, 0, 1, 1, 1, 1, 2], [0, 0, 0, 1, 0, 0, 1, 1, 0], 4)
    assert confusion.tolist() == [[3, 1, 0, 0], [2, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    precision, recall, f1 = class_scores(confusion)
    np.testing.assert_allclose(precision, [3 / 6, 2 / 3, 0, 0])
    np.testing.assert_allclose(recall, [3 / 4, 2 / 4, 0, 0])
    np.testing.assert_allclose(f1, [0.6, 4 / 7, 0, 0])
    np.testing.assert_allclose(row_normalised(confusion)[0], [0.75, 0.25, 0, 0])
    assert row_normalised(confusion)[3].tolist() == [0, 0, 0, 0]


def test_evaluation_of_a_hand_made_folder_gives_the_known_figures(hand_made, clf):
    ev = evaluate_folder(clf, hand_made)
    assert ev.classes == ["a", "b", "c"] and ev.preprocess == "center-crop"
    assert ev.confusion.dtype.kind == "i" and ev.confusion.tolist() == EXPECTED_CONFUSION
    assert ev.total == 8 and ev.correct == 6 and ev.accuracy == pytest.approx(0.75)
    figures = {f.name: f for f in ev.per_class}
    assert (figures["a"].count, figures["a"].predicted) == (4, 4)
    assert (figures["a"].precision, figures["a"].recall, figures["a"].f1) == pytest.approx((0.75, 0.75, 0.75))
    assert (figures["b"].precision, figures["b"].recall, figures["b"].f1) == pytest.approx((2 / 3, 1.0, 0.8))
    assert (figures["c"].precision, figures["c"].recall, figures["c"].f1) == pytest.approx((1.0, 0.5, 2 / 3))
    assert ev.macro["f1"] == pytest.approx((0.75 + 0.8 + 2 / 3) / 3)
    for r in ev.records:  # every probability is the closed-form one
        colour = HAND_MADE[ev.classes[r.true]][r.path.name]
        probs = expected_probabilities(colour)
        assert r.predicted == int(np.argmax(probs))
        assert r.probability == pytest.approx(probs[r.predicted], abs=1e-4)
        assert r.true_probability == pytest.approx(probs[r.true], abs=1e-4)
        assert r.unfamiliar is None  # the model has no threshold


def test_confusion_matches_predictions_made_one_by_one(tmp_path):
    """A random network, pictures of many shapes: the matrix must be what ``predict`` says, picture by picture."""
    torch.manual_seed(3)
    net = randomize_batchnorm(DenseNet(CONFIG), seed=3).eval()
    clf = DenseNetClassifier(net, ["a", "b", "c"], "cpu", preprocessing=Preprocessing(32, mode="center-crop"))
    rng = np.random.default_rng(0)
    for i in range(18):
        folder = tmp_path / "data" / "abc"[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        w, h = int(rng.integers(24, 90)), int(rng.integers(24, 90))
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    ev = evaluate_folder(clf, tmp_path / "data", batch_size=4)
    expected = np.zeros((3, 3), dtype=int)
    differs_in_full = False
    for label in "abc":
        for path in sorted((tmp_path / "data" / label).iterdir()):
            preds = clf.predict(path, topk=3, preprocess="center-crop")
            expected["abc".index(label), preds[0].index] += 1
            record = next(r for r in ev.records if r.path == path)
            assert record.predicted == preds[0].index
            assert record.probability == pytest.approx(preds[0].probability, abs=1e-5)
            true_p = next(p.probability for p in preds if p.index == record.true)
            assert record.true_probability == pytest.approx(true_p, abs=1e-5)
            full = clf.predict(path, topk=1, preprocess="full")[0]
            differs_in_full |= abs(full.probability - preds[0].probability) > 1e-3
    assert ev.confusion.tolist() == expected.tolist()
    assert ev.total == 18 and sum(f.count for f in ev.per_class) == 18
    assert differs_in_full  # the test would notice an evaluation made in the wrong preprocessing mode


# -- pictures: mistakes and cells ----------------------------------------------------
def test_mistakes_are_the_most_confident_first(hand_made, clf):
    make_folder(hand_made, {"b": {"orange.png": (250, 120, 0), "olive.png": (150, 120, 40)}})
    ev = evaluate_folder(clf, hand_made, mistakes=3)
    everything = ev.all_mistakes()
    assert len(everything) == 4 and all(not r.correct for r in everything)
    probabilities = [r.probability for r in everything]
    assert probabilities == sorted(probabilities, reverse=True)
    names = [r.path.name for r in everything]
    # closed form: orange a 0.994, purple a 0.954, greenish b 0.870, olive a 0.757
    assert names == ["orange.png", "purple.png", "greenish.png", "olive.png"]
    assert [r.path.name for r in ev.mistakes] == names[:3]
    assert evaluate_folder(clf, hand_made, mistakes=0).mistakes == []


def test_a_confusion_cell_lists_its_pictures(hand_made, clf):
    ev = evaluate_folder(clf, hand_made)
    assert [r.path.name for r in ev.cell(2, 0)] == ["purple.png"]
    assert {r.path.name for r in ev.cell(0, 0)} == {"red1.png", "red2.png", "red3.png"}
    assert ev.cell(1, 2) == []
    for i in range(3):
        for j in range(3):
            assert len(ev.cell(i, j)) == ev.confusion[i, j]
    correct = [r.probability for r in ev.cell(0, 0)]
    assert correct == sorted(correct, reverse=True)


# -- what the folder holds ------------------------------------------------------
def test_unreadable_picture_is_skipped_with_its_reason(hand_made, clf):
    (hand_made / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (hand_made / "b" / "empty.jpg").write_bytes(b"")
    ev = evaluate_folder(clf, hand_made)
    skipped = {p.name: why for p, why in ev.skipped}
    assert set(skipped) == {"broken.png", "empty.jpg"}
    assert "empty" in skipped["empty.jpg"]
    assert ev.total == 8 and ev.confusion.tolist() == EXPECTED_CONFUSION
    assert {s["path"] for s in ev.to_dict()["skipped"]} == {str(hand_made / "a" / "broken.png"),
                                                             str(hand_made / "b" / "empty.jpg")}
    # the warnings count the pictures classified, as the table does, not the files found
    assert "class 'a' has only 4 pictures; results on it will be unreliable" in ev.warnings
    assert "class 'b' has only 2 pictures; results on it will be unreliable" in ev.warnings


def test_folder_named_after_no_class_is_ignored(hand_made, clf):
    make_folder(hand_made, {"zebra": {"z.png": (0, 0, 255)}, ".cache": {"x.png": (0, 0, 255)}})
    ev = evaluate_folder(clf, hand_made)
    ignored = {p.name: why for p, why in ev.ignored}
    assert "zebra" in ignored and "class" in ignored["zebra"]
    assert ".cache" in ignored
    assert ev.total == 8 and all(r.path.parent.name != "zebra" for r in ev.records)


def test_classes_the_folder_lacks_have_count_zero(tmp_path, clf):
    root = make_folder(tmp_path / "data", {k: HAND_MADE[k] for k in ("a", "b")})
    ev = evaluate_folder(clf, root)
    c = ev.per_class[2]
    assert (c.name, c.count, c.predicted, c.precision, c.recall, c.f1) == ("c", 0, 0, 0.0, 0.0, 0.0)
    assert ev.confusion.shape == (3, 3) and ev.confusion[2].tolist() == [0, 0, 0]
    report = ev.to_dict()
    assert report["classes"][2] == {"name": "c", "count": 0, "predicted": 0, "precision": 0.0, "recall": 0.0,
                                    "f1": 0.0}
    assert ev.macro["f1"] == pytest.approx((6 / 7 + 0.8) / 2)  # over the classes that occur: a and b


def test_a_folder_no_evaluation_can_use_is_refused_with_its_name(tmp_path, clf):
    with pytest.raises(DataError, match="no such folder") as missing:
        evaluate_folder(clf, tmp_path / "nowhere")
    assert "nowhere" in str(missing.value)
    make_folder(tmp_path / "other", {"x": {"p.png": (1, 2, 3)}, "y": {"q.png": (1, 2, 3)}})
    with pytest.raises(DataError, match="model's classes") as unmatched:
        evaluate_folder(clf, tmp_path / "other")
    assert "other" in str(unmatched.value)


def test_a_check_made_earlier_is_used_as_it_is(hand_made, clf):
    check = check_folder(hand_made)  # its own class order: the evaluation maps it to the model's
    seen = []
    ev = evaluate_folder(clf, check, progress=lambda done, total: seen.append((done, total)))
    assert ev.confusion.tolist() == EXPECTED_CONFUSION
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)


def test_progress_counts_pictures_each_decoded_once(hand_made, clf, monkeypatch):
    import model.datasets
    import model.images

    decoded = []
    real = model.images.load_image
    for module in (model.images, model.datasets):
        monkeypatch.setattr(module, "load_image", lambda p: decoded.append(p) or real(p))
    seen = []
    evaluate_folder(clf, hand_made, progress=lambda done, total: seen.append((done, total)))
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and seen[-1] == (8, 8)
    assert len(decoded) == len(set(decoded)) == 8  # classifying decodes; no separate checking pass


def test_cancelling_stops_the_evaluation(hand_made, clf):
    check = check_folder(hand_made, class_names=clf.labels, min_per_class=0)
    with pytest.raises(Cancelled):
        evaluate_folder(clf, check, cancelled=lambda: True)


def test_unfamiliar_pictures_are_counted_when_the_model_can_tell(hand_made):
    clf = colour_classifier(unfamiliar_threshold=-7.0)  # energy -logsumexp: dull colours are unfamiliar
    make_folder(hand_made, {"c": {"grey.png": (60, 60, 70)}})
    ev = evaluate_folder(clf, hand_made)
    expected = [clf.predict(r.path, topk=1, preprocess="center-crop")[0].unfamiliar for r in ev.records]
    assert [r.unfamiliar for r in ev.records] == expected and any(expected) and not all(expected)
    report = ev.to_dict()
    assert report["unfamiliar"]["count"] == sum(expected)
    assert sum(c["unfamiliar"] for c in report["classes"]) == sum(expected)
    grey = next(p for p in report["pictures"] if p["path"].endswith("grey.png"))
    assert grey["unfamiliar"] is True


def test_unicode_class_folders(tmp_path):
    clf = colour_classifier(labels=("été", "猫", "c d"))
    root = make_folder(tmp_path / "données", {"été": {"rouge.png": (230, 20, 20), "vert.png": (60, 200, 0)},
                                               "猫": {"緑.png": (0, 220, 0)}, "c d": {"b.png": (0, 0, 200)}})
    ev = evaluate_folder(clf, root)
    assert ev.confusion.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    files = write_report(ev, clf, tmp_path / "out")
    report = json.loads(json.dumps(ev.to_dict(files), ensure_ascii=True))
    assert [c["name"] for c in report["classes"]] == ["été", "猫", "c d"]
    mistake = report["mistakes"][0]
    assert (mistake["true"], mistake["predicted"]) == ("été", "猫")
    names = [Path(p).name for p in mistake["files"].values()]
    assert any("猫" in n for n in names) and any("été" in n for n in names)
    assert all(Path(p).is_file() for p in mistake["files"].values())


# -- the report files ------------------------------------------------------------
def test_report_writes_the_confusion_png_and_each_mistakes_overlays(hand_made, clf, tmp_path):
    ev = evaluate_folder(clf, hand_made)
    out = tmp_path / "out"
    out.mkdir()
    files = write_report(ev, clf, out)
    width, height = png_size(files["confusion"])
    assert width > 300 and height > 300
    assert len(files["mistakes"]) == len(ev.mistakes) == 2 and files["problems"] == []
    for record, written in zip(ev.mistakes, files["mistakes"]):
        assert set(written) == {"comparison", "predicted", "true"}
        for kind in ("predicted", "true"):
            assert png_size(written[kind]) == (40, 40)  # the overlay is on the original picture
            assert Path(written[kind]).parent == out / "mistakes"
        assert png_size(written["comparison"])[0] > 3 * 40
        assert Path(written["comparison"]).name.startswith(f"{ev.mistakes.index(record) + 1:02d}_")
        with Image.open(written["true"]) as img:
            assert img.text["denselens:label"] == ev.classes[record.true]
        with Image.open(written["predicted"]) as img:
            assert img.text["denselens:label"] == ev.classes[record.predicted]
            assert img.text["denselens:source"] == str(record.path)


def test_report_heatmaps_show_where_each_class_is(tmp_path, clf):
    """Left half green, right half red: the red class's overlay must be hot on the right."""
    root = tmp_path / "data"
    (root / "b").mkdir(parents=True)
    img = Image.new("RGB", (64, 64), (0, 160, 0))
    img.paste((255, 0, 0), (32, 0, 64, 64))
    img.save(root / "b" / "split.png")
    ev = evaluate_folder(clf, root)
    assert ev.records[0].predicted == 0  # red wins: 255 against 160
    written = write_report(ev, clf, tmp_path / "out")["mistakes"][0]
    picture = np.asarray(img, dtype=float)

    def heat(path: str, columns: slice) -> float:
        """How hot (jet: red, not blue) the colour blended over the picture at alpha 0.5 is, in a band."""
        colour = 2 * np.asarray(Image.open(path), dtype=float) - picture
        return float((colour[8:56, columns, 0] - colour[8:56, columns, 2]).mean())

    left, right = slice(8, 24), slice(40, 56)
    assert heat(written["predicted"], right) > heat(written["predicted"], left) + 100
    assert heat(written["true"], left) > heat(written["true"], right) + 100


def test_a_true_class_without_evidence_gets_no_overlay_but_a_comparison(tmp_path, clf):
    root = make_folder(tmp_path / "data", {"c": {"pure_green.png": (0, 255, 0)}})  # no blue at all
    ev = evaluate_folder(clf, root)
    written = write_report(ev, clf, tmp_path / "out")["mistakes"][0]
    assert set(written) == {"comparison", "predicted"}
    png_size(written["comparison"])


def test_report_never_replaces_existing_files(hand_made, clf, tmp_path):
    ev = evaluate_folder(clf, hand_made)
    out = tmp_path / "out"
    out.mkdir()
    (out / "confusion.png").write_bytes(b"the user's own file")
    first = write_report(ev, clf, out)
    second = write_report(ev, clf, out)
    assert (out / "confusion.png").read_bytes() == b"the user's own file"
    assert Path(first["confusion"]).name == "confusion_2.png" and Path(second["confusion"]).name == "confusion_3.png"
    paths = [p for files in (first, second) for m in files["mistakes"] for p in m.values()]
    assert len(set(paths)) == len(paths) and all(Path(p).is_file() for p in paths)
    assert not list(out.rglob("*.part"))


def test_report_to_an_unwritable_place_is_an_export_error(hand_made, clf, tmp_path):
    from model.errors import ExportError

    ev = evaluate_folder(clf, hand_made)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ExportError, match="not a folder"):
        write_report(ev, clf, tmp_path / "file.txt" / "out")


def test_json_report_keeps_the_contract(hand_made, clf, tmp_path):
    ev = evaluate_folder(clf, hand_made)
    files = write_report(ev, clf, tmp_path / "out")
    report = json.loads(json.dumps(ev.to_dict(files)))
    assert set(report) >= {"model", "accuracy", "classes", "confusion", "mistakes", "skipped", "ignored"}
    assert "unfamiliar" not in report  # the model has no threshold
    assert report["confusion"] == EXPECTED_CONFUSION and report["accuracy"] == pytest.approx(0.75)
    for entry in report["classes"]:
        assert set(entry) >= {"name", "count", "precision", "recall", "f1"}
    for mistake, written in zip(report["mistakes"], files["mistakes"]):
        assert set(mistake) >= {"path", "true", "predicted", "probability", "files"}
        assert mistake["files"] == written
    assert [m["path"] for m in report["mistakes"]] == [str(r.path) for r in ev.mistakes]
    assert report["files"]["confusion"] == files["confusion"]


# -- the confusion picture --------------------------------------------------------
def test_any_class_name_is_drawn_without_warnings():
    assert drawable("$5 bill") == r"\$5 bill"
    assert "\ufffd" not in drawable("été") and drawable("été") == "été"
    names = ["猫", "$5 bill", "été", "🐈 cat", "a" * 80, "x\u202ey"]
    records = [PictureResult(Path(f"{i}.png"), i % 6, (i + 1) % 6, 0.9, 0.05) for i in range(12)]
    ev = FolderEvaluation("m", Path("root"), names, records, "full")
    image = render_confusion(ev)  # warnings are errors in this test run: a missing glyph would fail here
    assert image.mode == "RGB" and min(image.size) > 300


def test_a_large_model_shows_only_the_classes_that_occur():
    names = [f"class {i}" for i in range(200)]
    records = [PictureResult(Path("a.png"), 5, 5, 0.9, 0.9), PictureResult(Path("b.png"), 5, 17, 0.8, 0.1),
               PictureResult(Path("c.png"), 90, 90, 0.7, 0.7)]
    ev = FolderEvaluation("m", Path("root"), names, records, "full")
    assert ev.shown_classes() == [5, 17, 90]
    assert ev.confusion.shape == (200, 200) and ev.confusion.sum() == 3
    image = render_confusion(ev)
    assert max(image.size) < 1500
