"""Shared fixtures: seeded torchvision/our DenseNets, checkpoints and generated images."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from model.densenet import DenseNet, densenet  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BN non-trivial statistics so that BN bugs change the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_((torch.rand(n, generator=g) - 0.5) * 0.4)
    return model


@pytest.fixture(scope="session")
def tv_densenet121() -> torch.nn.Module:
    """torchvision's DenseNet-121 with fixed-seed weights and BN statistics."""
    import torchvision

    torch.manual_seed(0)
    return randomize_batchnorm(torchvision.models.densenet121()).eval()


@pytest.fixture(scope="session")
def densenet121_pth(tv_densenet121, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "densenet121-seeded.pth"
    torch.save(tv_densenet121.state_dict(), path)
    return str(path)


def make_tiny(num_classes: int = 4, seed: int = 0) -> DenseNet:
    """A DenseNet-BC small enough to run in milliseconds."""
    torch.manual_seed(seed)
    model = densenet(growth_rate=4, block_config=(2, 2, 2), num_init_features=8, bn_size=2,
                     num_classes=num_classes, stem="small")
    return randomize_batchnorm(model, seed).eval()


@pytest.fixture
def tiny_pth(tmp_path) -> str:
    model = make_tiny()
    path = tmp_path / "tiny.pth"
    torch.save({"state_dict": model.state_dict(), "class_names": ["ant", "bee", "cat", "dog"],
                "preprocessing": {"input_size": 64}}, path)
    return str(path)


def save_image(path, size=(80, 60), mode="RGB", color=(200, 30, 30), fmt=None, **save_kw) -> str:
    img = Image.new("RGB", size, color)
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt, **save_kw)
    return str(path)


def usage_error(argv: list[str], capsys) -> str:
    """Run ``main.py argv`` and return its stderr, asserting a usage error: exit 2 and no traceback."""
    from cli.main import main as cli

    with pytest.raises(SystemExit) as info:
        cli(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err
