"""``DenseNetClassifier``: the public entry point for loading a DenseNet and classifying images."""

from __future__ import annotations

import collections
import copy
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from model import preprocess as pp
from model.allocator import retain_freed_memory
from model.checkpoints import Checkpoint, build_model, read_checkpoint
from model.densenet import DenseNet
from model.devices import device_name, is_out_of_memory, resolve_device
from model.errors import DenseLensError, WeightsUnavailableError
from model.gradients import Plan
from model.images import LoadedImage, as_loaded
from model.labels import check_labels, generic_labels, imagenet_labels, read_sidecar
from model.paths import assets_dir
from model.weights import ProgressCallback, ensure_weights
from model.zoo import IMAGENET_PREPROCESSING, MODELS, Preprocessing, choices_text, model_title

ImageInput = "str | Path | Image.Image | LoadedImage"


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float
    unfamiliar: bool | None = None  # the picture is unlike the training pictures; None: the model cannot tell

    def to_dict(self) -> dict:
        record = {"index": self.index, "label": self.label, "probability": self.probability}
        if self.unfamiliar is not None:
            record["unfamiliar"] = self.unfamiliar
        return record


def energy(logits: torch.Tensor) -> torch.Tensor:
    """The energy score ``-logsumexp(logits)`` per row: lower for pictures like the training ones."""
    return -torch.logsumexp(logits.float(), dim=-1)


@dataclass
class Prepared:
    """An image ready for the network: its tensor and where it sits on the original."""

    loaded: LoadedImage
    tensor: torch.Tensor  # CHW, normalised
    geometry: pp.Geometry


@dataclass
class PathResult:
    path: Path
    predictions: list[Prediction] | None
    error: str | None


class DenseNetClassifier:
    """A DenseNet with its labels, preprocessing and device."""

    def __init__(self, model: DenseNet, labels: Sequence[str], device: str | torch.device = "auto",
                 source: str = "", preprocessing: Preprocessing = IMAGENET_PREPROCESSING, spec: str = "",
                 unfamiliar_threshold: float | None = None) -> None:
        self.warnings: list[str] = []
        retain_freed_memory()
        dev, warning = resolve_device(str(device))
        if warning:
            self.warnings.append(warning)
        self.labels = list(labels)
        self.source = source
        self.spec = spec or source  # the registry name or the path it was loaded from
        self.weights_file = ""  # the file the weights came from, when loaded from one
        self.preprocessing = preprocessing
        self.unfamiliar_threshold = unfamiliar_threshold
        self.model = model.fused_for_inference()  # a copy: the caller's network is never changed
        self._plan: Plan | None = None
        self._reduced: tuple[DenseNet, torch.dtype, DenseNet] | None = None
        self.device = torch.device("cpu")
        self._move_to(dev)

    # -- loading ----------------------------------------------------------
    @classmethod
    def load(cls, spec: str | Path, device: str = "auto", progress: ProgressCallback | None = None,
             allow_download: bool = True) -> DenseNetClassifier:
        """Load a registered model (``model.zoo.MODELS``: ImageNet DenseNets, ``demo``) or a checkpoint file."""
        spec_str = str(spec)
        entry = MODELS.get(spec_str)
        if entry is not None and entry.imagenet:
            path = ensure_weights(spec_str, progress, allow_download)
            clf = cls._from_checkpoint(read_checkpoint(path), device, f"{spec_str} (ImageNet)",
                                       imagenet_labels(), default=entry.preprocessing)
        elif entry is not None:
            path = assets_dir() / "models" / entry.weights_file
            if not path.is_file():
                raise WeightsUnavailableError(
                    f"{entry.title} is not part of this installation ({path} is missing)")
            clf = cls._from_checkpoint(read_checkpoint(path), device, spec_str, path=path,
                                       default=entry.preprocessing)
        else:
            path = Path(spec_str)
            if not path.exists() and path.suffix == "":
                raise ValueError(f"unknown model {spec_str!r}; choose from {choices_text()} or a file path")
            clf = cls._from_checkpoint(read_checkpoint(path), device, str(path), path=path)
        clf.spec = spec_str
        clf.weights_file = str(path)
        return clf

    @classmethod
    def _from_checkpoint(cls, ckpt: Checkpoint, device: str, source: str, labels: list[str] | None = None,
                         path: Path | None = None,
                         default: Preprocessing = IMAGENET_PREPROCESSING) -> DenseNetClassifier:
        model = build_model(ckpt, source)
        n = ckpt.config.num_classes
        if ckpt.labels is not None:
            labels = check_labels(ckpt.labels, n, f"{source} (embedded class names)")
        elif path is not None and (side := read_sidecar(path)) is not None:
            labels = check_labels(side, n, f"labels file beside {path.name}")
        elif labels is None or len(labels) != n:
            labels = generic_labels(n)
        return cls(model, labels, device, source, ckpt.preprocessing or default,
                   unfamiliar_threshold=ckpt.unfamiliar_threshold)

    @property
    def title(self) -> str:
        """How people see this model named: the registry title or the file name."""
        return model_title(self.spec)

    @property
    def input_size(self) -> int:
        return self.preprocessing.input_size

    # -- device -----------------------------------------------------------
    def _move_to(self, device: torch.device) -> None:
        # channels_last makes CPU convolutions about 20% faster here and is exact.
        self.model.to(device=device, memory_format=torch.channels_last)
        self.device = device
        self._plan = None
        self._reduced = None

    @property
    def gradient_plan(self) -> Plan:
        """The network checked and transposed for ``model.gradients``, once per network and device."""
        if self._plan is None or self._plan.model is not self.model:
            self._plan = Plan(self.model)
        return self._plan

    def reduced_precision_model(self, dtype: torch.dtype) -> DenseNet:
        """A copy of the network with its parameters in ``dtype`` (bfloat16 for Score-CAM (fast)), made once
        per network, device and dtype.

        On bfloat16 inputs it gives the numbers the network gives under autocast to ``dtype`` (every
        convolution, product and pooling runs in ``dtype`` there too; a BN keeps its float32 statistics
        there, and here), without casting every weight again on every call: Score-CAM (fast) on
        DenseNet-121 takes 0.87 of the time (docs/BENCHMARKS.md).
        """
        if self._reduced is None or self._reduced[0] is not self.model or self._reduced[1] != dtype:
            reduced = copy.deepcopy(self.model).to(dtype)
            for name, module in self.model.named_modules():
                if isinstance(module, torch.nn.BatchNorm2d):  # norm5: autocast keeps a BN's statistics in float32
                    reduced.get_submodule(name).float().load_state_dict(module.state_dict())
            self._reduced = (self.model, dtype, reduced)
        return self._reduced[2]

    @property
    def config(self):
        """The network's DenseNetConfig."""
        return self.model.config

    @property
    def device_name(self) -> str:
        return device_name(self.device)

    def run_with_fallback(self, fn: Callable[[], object]) -> object:
        """Run ``fn``; if the accelerator runs out of memory, move to the CPU and retry once."""
        try:
            return fn()
        except (RuntimeError, torch.OutOfMemoryError) as e:
            if self.device.type == "cpu" or not is_out_of_memory(e):
                raise
            message = f"{self.device_name} ran out of memory; continuing on the CPU"
            self.warnings.append(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            self._move_to(torch.device("cpu"))
            return fn()

    # -- preprocessing ----------------------------------------------------
    def prepare(self, item: ImageInput, mode: str = "full") -> Prepared:
        """Load (if needed) and preprocess one image; raises ImageLoadError for bad files.

        Files are always decoded at full size: every path (``predict``,
        ``predict_paths``, ``explain``, the app) then analyses the same pixels
        and gives the same numbers.
        """
        loaded = as_loaded(item)
        geometry = pp.plan(loaded.original_size, mode, self.input_size)
        analysed = pp.analysed_image(loaded.image, geometry)
        p = self.preprocessing
        return Prepared(loaded, pp.to_tensor(analysed, p.mean, p.std), geometry)

    def batch(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.stack(list(tensors)).to(self.device, memory_format=torch.channels_last)

    # -- inference --------------------------------------------------------
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        def run() -> torch.Tensor:
            with torch.inference_mode():
                return self.model(x.to(self.device, memory_format=torch.channels_last)).float()
        return self.run_with_fallback(run)

    def unfamiliar(self, logits: torch.Tensor) -> list[bool | None]:
        """Per row: is the picture unlike the training pictures (None when the model has no threshold)."""
        if self.unfamiliar_threshold is None:
            return [None] * len(logits)
        return [bool(e > self.unfamiliar_threshold) for e in energy(logits).cpu().tolist()]

    def top_predictions(self, logits: torch.Tensor, topk: int) -> list[list[Prediction]]:
        probs = torch.softmax(logits.float(), dim=1).cpu()
        k = max(1, min(int(topk), probs.shape[1]))
        values, indices = probs.topk(k, dim=1)
        return [[Prediction(int(i), self.labels[int(i)], float(v), odd) for v, i in zip(vs, idx)]
                for vs, idx, odd in zip(values, indices, self.unfamiliar(logits))]

    def predict(self, image_or_images: ImageInput | Sequence[ImageInput], topk: int = 5,
                preprocess: str = "full") -> list[Prediction] | list[list[Prediction]]:
        """Top-k predictions for one image (a list) or for several (a list per image)."""
        single = not isinstance(image_or_images, (list, tuple))
        items = [image_or_images] if single else list(image_or_images)
        results: list[list[Prediction]] = []
        for prepared in map(lambda it: self.prepare(it, preprocess), items):
            results.extend(self.top_predictions(self.logits(prepared.tensor[None]), topk))
        return results[0] if single else results

    def explain(self, image: ImageInput | Prepared, layers: Sequence[str] | None = None,
                classes: Sequence[int | str] | None = None, method: str = "gradcam", topk: int = 5,
                preprocess: str = "full", progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None):
        """Heatmaps for each (layer, class) and the top-k predictions, from one forward pass.

        ``layers``: tap names (``denseblock1..4``, ``transition1..3``,
        ``norm5``); None means the deepest dense block.
        ``classes``: None (the top class), or any of ``"topK"``, an index, a
        class name.  ``method``: gradcam, gradcam++, xgradcam, layercam,
        hirescam, scorecam_fast or scorecam (any name in ``model.cam.METHODS``;
        the slow ones report through ``progress`` and stop when ``cancelled``).
        Returns a ``model.explain.Explanation``.
        """
        from model.explain import explain

        prepared = image if isinstance(image, Prepared) else self.prepare(image, preprocess)
        return explain(self, prepared, layers, classes, method, topk, progress, cancelled)

    def predict_paths(self, paths: Iterable[str | Path], topk: int = 5, preprocess: str = "full",
                      batch_size: int = 8, workers: int = 2) -> Iterator[PathResult]:
        """Classify files in order, decoding ahead in threads while the network runs.

        Consecutive images of the same analysed size are batched.  A file that
        fails yields a result with ``error`` set; the rest carry on.
        """
        paths = [Path(p) for p in paths]
        window = max(batch_size * 2, workers * 2)
        pending: collections.deque[tuple[Path, Future]] = collections.deque()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
            it = iter(paths)

            def refill() -> None:
                while len(pending) < window:
                    p = next(it, None)
                    if p is None:
                        return
                    pending.append((p, pool.submit(self.prepare, p, preprocess)))

            refill()
            while pending:
                group: list[tuple[Path, Prepared]] = []
                errors: list[PathResult] = []
                while pending and len(group) < batch_size:
                    path, fut = pending[0]
                    try:
                        prepared = fut.result()
                    except DenseLensError as e:
                        pending.popleft()
                        if group:  # keep output in input order: flush the group first
                            errors.append(PathResult(path, None, str(e)))
                            break
                        yield PathResult(path, None, str(e))
                        refill()
                        continue
                    if group and prepared.tensor.shape != group[0][1].tensor.shape:
                        break
                    pending.popleft()
                    group.append((path, prepared))
                    refill()
                if group:
                    logits = self.logits(self.batch([g[1].tensor for g in group]))
                    for (path, _), preds in zip(group, self.top_predictions(logits, topk)):
                        yield PathResult(path, preds, None)
                yield from errors
                refill()
