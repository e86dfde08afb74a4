"""The registry of models DenseLens knows by name, and of the preprocessing modes.

One entry per model: its name (what ``--model`` and the Model menu take), its
title, its architecture, where its weights come from (torchvision's ImageNet
files with their hash, or the bundled demo file) and its preprocessing.
Everything else (the CLI's choices, the GUI's menu, the factories, the
download code) reads this table.  Importing it needs no torch, so the window
builds its menus while torch is still importing.
"""

from __future__ import annotations

from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Analysis modes: "full" keeps the whole picture (aspect kept), "center-crop" is
# torchvision's evaluation protocol (resize to 8/7 of the input size, crop the centre).
PREPROCESS_MODES = ("full", "center-crop")


def crop_resize(input_size: int) -> int:
    """The shorter side before a center crop: 256 for a 224-pixel model."""
    return round(input_size * 256 / 224)


def preprocess_title(mode: str, input_size: int) -> str:
    """How a mode is shown to people, with the loaded model's real sizes."""
    if mode == "full":
        return "Whole image"
    return f"Center crop {input_size}"


def preprocess_help(mode: str, input_size: int | None = None) -> str:
    """One line describing a mode; ``input_size`` None describes it for any model."""
    if mode == "full":
        return "the whole picture, shorter side resized to the model's input size, aspect ratio kept"
    if input_size is None:
        return ("torchvision's protocol: shorter side resized to 8/7 of the model's input size, "
                "centre square of the input size cropped (256 then 224 for ImageNet models)")
    return f"shorter side resized to {crop_resize(input_size)}, centre {input_size}x{input_size} cropped"


@dataclass(frozen=True)
class Preprocessing:
    """What turns a picture into the network's input: size, normalisation, default mode."""

    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    mode: str = "full"

    def to_dict(self) -> dict:
        return {"input_size": self.input_size, "mean": list(self.mean), "std": list(self.std), "mode": self.mode}


IMAGENET_PREPROCESSING = Preprocessing()


@dataclass(frozen=True)
class Architecture:
    """The numbers that make a DenseNet: growth rate, layers per block, stem width."""

    growth_rate: int
    block_config: tuple[int, ...]
    num_init_features: int


@dataclass(frozen=True)
class ModelEntry:
    """A model known by name.

    ``weights_file`` is torchvision's published file name for ImageNet models
    (its 8 hex digits start its SHA-256) or the bundled file's name under
    ``assets/models`` for ``bundled`` models.
    """

    name: str
    title: str
    weights_file: str
    architecture: Architecture | None = None
    preprocessing: Preprocessing = IMAGENET_PREPROCESSING
    bundled: bool = False
    imagenet: bool = False
    parameters: int = 0
    acc1: float = 0.0
    acc5: float = 0.0
    size_mb: float = 0.0

    @property
    def sha256_prefix(self) -> str:
        """The hash prefix torchvision puts in its file names."""
        return self.weights_file.rsplit("-", 1)[1].split(".")[0]


def _imagenet(name: str, title: str, file: str, arch: Architecture, params: int, acc1: float, acc5: float,
              size_mb: float) -> ModelEntry:
    return ModelEntry(name, title, file, arch, IMAGENET_PREPROCESSING, imagenet=True, parameters=params, acc1=acc1,
                      acc5=acc5, size_mb=size_mb)


MODELS: dict[str, ModelEntry] = {e.name: e for e in (
    _imagenet("densenet121", "DenseNet-121 (ImageNet)", "densenet121-a639ec97.pth",
              Architecture(32, (6, 12, 24, 16), 64), 7_978_856, 74.434, 91.972, 30.8),
    _imagenet("densenet169", "DenseNet-169 (ImageNet)", "densenet169-b2777c0a.pth",
              Architecture(32, (6, 12, 32, 32), 64), 14_149_480, 75.600, 92.806, 54.7),
    _imagenet("densenet201", "DenseNet-201 (ImageNet)", "densenet201-c1103571.pth",
              Architecture(32, (6, 12, 48, 32), 64), 20_013_928, 76.896, 93.370, 77.4),
    _imagenet("densenet161", "DenseNet-161 (ImageNet)", "densenet161-8d451a50.pth",
              Architecture(48, (6, 12, 36, 24), 96), 28_681_000, 77.138, 93.560, 110.4),
    ModelEntry("demo", "Demo model (shapes, bundled)", "demo.pth", bundled=True,
               preprocessing=Preprocessing(input_size=96)),
)}

def model_title(spec: str) -> str:
    """A registered model's title, else the file name of a checkpoint path."""
    entry = MODELS.get(spec)
    if entry is not None:
        return entry.title
    from pathlib import PurePath

    return PurePath(spec).name or spec


def choices_text() -> str:
    """``densenet121|densenet169|...|demo``: for help texts and messages."""
    return "|".join(MODELS)
