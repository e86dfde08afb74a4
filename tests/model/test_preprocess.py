"""Analysis geometry: what part of the original each mode analyses, at what size."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from model.preprocess import analysed_image, plan, to_tensor


def test_full_mode_keeps_aspect_and_covers_whole_image():
    g = plan((600, 400), "full", 224)
    assert g.analysed_size == (336, 224) and g.covers_whole_image


def test_full_mode_caps_extreme_aspect_ratios():
    g = plan((10000, 10), "full", 224)
    assert g.analysed_size == (896, 32)


def test_center_crop_matches_torchvision_protocol():
    g = plan((512, 256), "center-crop", 224)
    # shorter side 256 -> scale 1; crop 224 in the middle: x from 144 to 368, y from 16 to 240
    assert g.analysed_size == (224, 224)
    assert g.crop_box == pytest.approx((144, 16, 368, 240))
    assert not g.covers_whole_image


def _torchvision_center_crop(img: Image.Image) -> torch.Tensor:
    import torchvision.transforms as T

    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                      T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])(img)


def _ours_center_crop(img: Image.Image) -> torch.Tensor:
    return to_tensor(analysed_image(img, plan(img.size, "center-crop")))


@pytest.mark.parametrize("size", [(300, 200), (512, 256), (301, 200)])
def test_center_crop_pixels_equal_resize_then_crop(size):
    img = Image.effect_noise(size, 50).convert("RGB")
    ours, ref = _ours_center_crop(img), _torchvision_center_crop(img)
    assert ours.shape == ref.shape
    assert torch.equal(ours, ref), (ours - ref).abs().max()


# One resampling through the crop box instead of resize-then-crop: Pillow's integer rounding between its
# horizontal and vertical passes can then differ by one grey level (measured: up to 1/255 before normalising).
ONE_GREY_LEVEL = 1 / 255 / min((0.229, 0.224, 0.225)) + 1e-6


@pytest.mark.parametrize("size", [
    (200, 300), (640, 480), (300, 400),
    (1000, 333), (333, 1000), (517, 389),
])
def test_center_crop_pixels_within_one_grey_level_of_torchvision(size):
    img = Image.effect_noise(size, 50).convert("RGB")
    ours, ref = _ours_center_crop(img), _torchvision_center_crop(img)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() <= ONE_GREY_LEVEL


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="full, center-crop"):
        plan((10, 10), "stretch")


def test_to_tensor_normalises():
    x = to_tensor(Image.new("RGB", (4, 4), (255, 0, 0)), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert torch.allclose(x[:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
