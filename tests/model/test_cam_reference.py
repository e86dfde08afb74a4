"""Our raw maps against pytorch-grad-cam's, on DenseNet-121 and a real photograph.

What each side is given, so the comparison is of the same thing:
* the same fixed-seed weights (torchvision's densenet121 for pytorch-grad-cam,
  loaded strictly into ours), the same preprocessed input tensor (Grace
  Hopper's portrait from matplotlib's sample data, center-crop 224x224), the
  same target (the class's pre-softmax logit, ``ClassifierOutputTarget``) and
  the same layer (the output of ``features.denseblockN``);
* pytorch-grad-cam is asked for its map at feature-map resolution (its
  target size is set to the feature map's), where it has applied ReLU and
  min-max normalisation; ours is the raw map after ReLU, before
  normalisation.  Pearson correlation ignores that affine rescaling.

Score-CAM needs hundreds of forward passes per layer, so it is compared on the
small demo DenseNet (96x96 input) instead, its checkpoint loaded unfused for
pytorch-grad-cam.  Both sides mask the input with each channel upsampled
bilinearly (corners aligned) and min-max normalised, score the class logit
and take the softmax over channels; the maps are compared at feature-map
resolution as above.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from model.checkpoints import build_model, read_checkpoint
from model.classifier import DenseNetClassifier
from model.densenet import densenet121
from model.paths import assets_dir, demo_model_path

REFERENCE = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "xgradcam": XGradCAM,
             "layercam": LayerCAM, "hirescam": HiResCAM}
BLOCKS = ["denseblock1", "denseblock2", "denseblock3", "denseblock4"]


@pytest.fixture(scope="module")
def setup(tv_densenet121):
    ours = densenet121()
    ours.load_state_dict(tv_densenet121.state_dict(), strict=True)
    clf = DenseNetClassifier(ours, [f"c{i}" for i in range(1000)], "cpu")
    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    prepared = clf.prepare(photo, "center-crop")
    return clf, prepared


def _reference_map(tv, method, layer, x, class_index, size_hw):
    cam = REFERENCE[method](model=tv, target_layers=[getattr(tv.features, layer)])
    cam.get_target_width_height = lambda _x: (size_hw[1], size_hw[0])
    return cam(input_tensor=x, targets=[ClassifierOutputTarget(class_index)])[0]


@pytest.mark.slow
@pytest.mark.parametrize("method", list(REFERENCE))
def test_raw_maps_agree_with_pytorch_grad_cam(setup, tv_densenet121, method):
    clf, prepared = setup
    # The top class, the runner-up and an unlikely class: not only the top one.
    explanation = clf.explain(prepared, layers=BLOCKS, classes=["top2", 0], method=method)
    assert len(explanation.maps) == 12
    x = prepared.tensor[None]
    for m in explanation.maps:
        ref = _reference_map(tv_densenet121, method, m.layer, x, m.class_index, m.raw.shape)
        assert ref.shape == m.raw.shape
        if m.status == "empty":
            assert ref.max() == 0
            continue
        r = np.corrcoef(ref.ravel(), m.raw.ravel())[0, 1]
        assert r >= 0.999, (method, m.layer, m.class_index, r)


def test_different_classes_give_different_maps(setup):
    clf, prepared = setup
    explanation = clf.explain(prepared, layers=["denseblock3"], classes=["top1", 0])
    a, b = (m.raw for m in explanation.maps)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] < 0.95


@pytest.mark.slow
@pytest.mark.skipif(not demo_model_path().is_file(), reason="the demo model is not bundled")
def test_score_cam_agrees_with_pytorch_grad_cam():
    clf = DenseNetClassifier.load("demo", device="cpu")
    reference = build_model(read_checkpoint(demo_model_path()), "demo")  # unfused, as trained
    prepared = clf.prepare(assets_dir() / "samples" / "circle-and-star.png")
    # The earliest block (24x24 map, 96 channels) and the deepest (6x6, 168 channels); the top class and
    # an unlikely one.  Maps of two classes at one layer correlate at most 0.90 here (0.15 at denseblock1).
    layers = ["denseblock1", "denseblock3"]
    explanation = clf.explain(prepared, layers=layers, classes=["top1", "hexagon"], method="scorecam")
    assert len(explanation.maps) == 4
    x = prepared.tensor[None]
    for m in explanation.maps:
        cam = ScoreCAM(model=reference, target_layers=[getattr(reference.features, m.layer)])
        cam.batch_size = 64
        cam.get_target_width_height = lambda _x, hw=m.raw.shape: (hw[1], hw[0])
        ref = cam(input_tensor=x, targets=[ClassifierOutputTarget(m.class_index)])[0]
        assert ref.shape == m.raw.shape
        if m.status == "empty":
            assert ref.max() == 0
            continue
        r = np.corrcoef(ref.ravel(), m.raw.ravel())[0, 1]
        assert r >= 0.99, (m.layer, m.label, r)
