"""Training a DenseNet on the procedural shapes or on a folder of labelled pictures.

Start points (``init``): ``scratch``, any model in ``model.zoo.MODELS`` (the
ImageNet DenseNets, downloaded and cached like everywhere else, or ``demo``),
or a checkpoint file; the classifier is replaced when the class count differs.
Modes: ``head`` trains a new classifier on frozen features computed once per
picture (``model.feature_cache``); ``finetune`` trains the head, then the last
dense block, ``norm5`` and the head at a tenth of the rate; ``full`` trains
everything.

Training and inference prepare pictures alike: a folder's checkpoint records
``center-crop`` at the input size, validation runs exactly that (what
``classify``, ``explain`` and the app do by default for the checkpoint), and
augmentation (``model.augment``) only varies the region, orientation and
colours of training views.  Seeded, validated every epoch, keeping the best
epoch (validation accuracy, then loss), resumable bit for bit from
``<out>.last.pth``.  The best checkpoint stores the validation files and the
energy threshold that 95% of the validation pictures pass
(``unfamiliar``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from model import preprocess as pp
from model.augment import AUGMENTATIONS, augment
from model.checkpoint_metadata import FORMAT_VERSION, MAX_INPUT_SIZE, MIN_INPUT_SIZE
from model.checkpoints import build_model, read_checkpoint
from model.classifier import energy
from model.datasets import DataCheck, check_folder, stratified_split
from model.densenet import DenseNet, DenseNetConfig
from model.devices import resolve_device
from model.errors import Cancelled, DenseLensError
from model.export import atomic_write
from model.feature_cache import FeatureCache, file_digest, network_digest
from model.images import load_image
from model.paths import assets_dir
from model.shapes import CLASSES, sample
from model.training_modes import MODES, default_mode
from model.zoo import MODELS, Preprocessing, choices_text

CHECKPOINT_FORMAT = f"denselens-checkpoint-{FORMAT_VERSION}"
VALIDATION_SEED_OFFSET = 1_000_003  # validation draws from a stream training never sees
DEFAULT_LR = {"head": 1e-2, "finetune": 1e-3, "full": 3e-3}
TAIL_RATE = 0.1  # finetune's second phase: the last block, norm5 and the head at this share of the rate
HEAD_SHARE = 0.3  # finetune: the share of epochs that train the head alone
WARMUP = 0.15  # share of each phase's steps spent warming the rate up
UNFAMILIAR_QUANTILE = 0.95
SCRATCH_INPUT_SIZE = 96


@dataclass
class TrainConfig:
    out: str
    data: str = "shapes"  # "shapes" or a folder with one sub-folder per class
    init: str = "scratch"  # scratch, a name in model.zoo.MODELS, or a checkpoint file
    mode: str | None = None  # head, finetune, full; None: finetune from weights, full from scratch
    val_fraction: float = 0.2
    val_folder: str | None = None
    epochs: int = 12
    steps_per_epoch: int = 100  # shapes only: a folder's epoch is one pass over its training pictures
    batch_size: int = 64
    lr: float | None = None  # None: DEFAULT_LR for the mode
    weight_decay: float = 0.01
    input_size: int | None = None  # None: the start point's, SCRATCH_INPUT_SIZE from scratch
    augment: str = "light"
    growth_rate: int = 12  # the architecture when training from scratch
    block_config: tuple[int, ...] = (6, 8, 8)
    num_init_features: int = 24
    stem: str = "imagenet"
    seed: int = 0
    val_size: int = 1000  # shapes only
    workers: int = 1
    memory_efficient: bool = False
    device: str = "cpu"
    resume: bool = False

    @property
    def resolved_mode(self) -> str:
        return self.mode or default_mode(self.init)

    @property
    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.resolved_mode]


@dataclass
class TrainEvents:
    """How training reports: lines of text, data-check progress, steps, finished epochs; and a stop flag."""

    log: Callable[[str], None] = lambda _msg: None
    checking: Callable[[int, int], None] | None = None  # pictures checked, total
    step: Callable[[int, int, int, float], None] | None = None  # epoch (1-based), step, steps, running loss
    epoch: Callable[[dict], None] | None = None  # the epoch's figures
    cancelled: Callable[[], bool] = lambda: False


@dataclass
class Plan:
    """What a run trains on: classes, the two picture lists, the preprocessing and the start network."""

    classes: list[str]
    train: Dataset
    val: Dataset
    preprocessing: Preprocessing
    model: DenseNet
    check: DataCheck | None = None
    validation_files: list[str] = field(default_factory=list)
    class_weights: torch.Tensor | None = None
    counts: dict = field(default_factory=dict)


# -- data ----------------------------------------------------------------------
class ShapesDataset(Dataset):
    """``length`` samples of the shapes stream ``seed``, as normalised tensors."""

    def __init__(self, seed: int, length: int, size: int) -> None:
        self.seed, self.length, self.size = seed, length, size

    def __len__(self) -> int:
        return self.length

    def sample_image(self, index: int):
        """The picture behind item ``index`` (a PIL image)."""
        return sample(self.seed, index, (self.size, self.size)).image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        s = sample(self.seed, index, (self.size, self.size))
        return pp.to_tensor(s.image), s.label


class FolderDataset(Dataset):
    """Labelled files prepared as inference prepares them; training views augmented (seeded per epoch)."""

    def __init__(self, files: list[tuple[Path, int]], preprocessing: Preprocessing, level: str, seed: int) -> None:
        self.files, self.preprocessing, self.level, self.seed = files, preprocessing, level, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.files)

    def prepared(self, index: int) -> torch.Tensor:
        """Exactly what ``DenseNetClassifier.prepare`` makes of the file with this preprocessing."""
        p = self.preprocessing
        loaded = load_image(self.files[index][0])
        image = pp.analysed_image(loaded.image, pp.plan(loaded.original_size, p.mode, p.input_size))
        return pp.to_tensor(image, p.mean, p.std)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = self.files[index][1]
        if self.level == "none":
            return self.prepared(index), label
        p = self.preprocessing
        rng = np.random.default_rng([self.seed, self.epoch, index])
        view = augment(load_image(self.files[index][0]).image, p.input_size, self.level, rng)
        return pp.to_tensor(view, p.mean, p.std), label


# -- start point -----------------------------------------------------------------
def start_network(init: str, num_classes: int, cfg: TrainConfig) -> tuple[DenseNet, Preprocessing]:
    """The network to start from, with ``num_classes`` outputs, and the preprocessing it expects."""
    if init == "scratch":
        config = DenseNetConfig(cfg.growth_rate, tuple(cfg.block_config), cfg.num_init_features, 4, 0.5, 0.0,
                                num_classes, cfg.stem)
        return DenseNet(config, memory_efficient=cfg.memory_efficient), Preprocessing(SCRATCH_INPUT_SIZE)
    entry = MODELS.get(init)
    if entry is not None and entry.imagenet:
        from model.weights import ensure_weights

        path = ensure_weights(init, None, True)
    elif entry is not None:
        path = assets_dir() / "models" / entry.weights_file
    else:
        path = Path(init)
        if not path.is_file():
            raise DenseLensError(f"--init {init}: no such file, and not one of scratch, {choices_text()}")
    ckpt = read_checkpoint(path)
    model = build_model(ckpt, str(path))
    preprocessing = ckpt.preprocessing or (entry.preprocessing if entry else Preprocessing())
    if model.config.num_classes != num_classes:
        model.config = replace(model.config, num_classes=num_classes)
        model.classifier = nn.Linear(model.config.num_features, num_classes)
    model.memory_efficient = cfg.memory_efficient
    for module in model.modules():
        if hasattr(module, "memory_efficient"):
            module.memory_efficient = cfg.memory_efficient
    return model, preprocessing


def _plan(cfg: TrainConfig, events: TrainEvents) -> Plan:
    if cfg.data == "shapes":
        model, pre = start_network(cfg.init, len(CLASSES), cfg)
        size = cfg.input_size or pre.input_size
        pre = replace(pre, input_size=size, mode="full")  # square pictures: the whole picture, resized
        epoch_samples = cfg.steps_per_epoch * cfg.batch_size
        return Plan(list(CLASSES), ShapesDataset(cfg.seed * 10_000, epoch_samples, size),
                    ShapesDataset(cfg.seed + VALIDATION_SEED_OFFSET, cfg.val_size, size), pre, model)
    check = check_folder(cfg.data, events.checking, events.cancelled)
    if cfg.val_folder:
        val_check = check_folder(cfg.val_folder, events.checking, events.cancelled, class_names=check.classes,
                                 min_per_class=0)
        train_files, val_files = check.files, val_check.files
        check.warnings += val_check.warnings
        check.bad += val_check.bad
        check.ignored += val_check.ignored
        val_root = Path(cfg.val_folder)
    else:
        train_files, val_files = stratified_split(check.files, cfg.val_fraction, cfg.seed)
        val_root = Path(cfg.data)
    model, pre = start_network(cfg.init, len(check.classes), cfg)
    pre = replace(pre, input_size=cfg.input_size or pre.input_size, mode="center-crop")
    weights = None
    if check.imbalanced:
        counts = torch.bincount(torch.tensor([label for _, label in train_files]), minlength=len(check.classes))
        weights = len(train_files) / (len(check.classes) * counts.clamp(min=1).float())
    return Plan(check.classes, FolderDataset(train_files, pre, cfg.augment, cfg.seed),
                FolderDataset(val_files, pre, "none", cfg.seed), pre, model, check,
                [str(p.relative_to(val_root)) for p, _ in val_files], weights,
                {"train": _per_class(train_files, check.classes), "validation": _per_class(val_files, check.classes)})


def _per_class(files: list[tuple[Path, int]], classes: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(classes, 0)
    for _, label in files:
        counts[classes[label]] += 1
    return counts


# -- what trains when -------------------------------------------------------------
def _tail(model: DenseNet) -> list[nn.Module]:
    """The last dense block and norm5: what ``finetune`` trains in its second phase."""
    last = [n for n, _ in model.features.named_children() if n.startswith("denseblock")][-1]
    return [getattr(model.features, last), model.features.norm5]


def _phases(mode: str, epochs: int) -> int:
    """Epochs of the first phase (the head alone) for ``finetune``; 0 otherwise."""
    return min(epochs - 1, max(1, round(epochs * HEAD_SHARE))) if mode == "finetune" and epochs > 1 else 0


def _set_trainable(model: DenseNet, mode: str, head_only: bool) -> None:
    """requires_grad and train/eval per part: frozen parts keep their BN statistics."""
    model.train()
    if mode == "full":
        model.requires_grad_(True)
        return
    model.requires_grad_(False)
    model.features.eval()
    model.classifier.requires_grad_(True)
    if mode == "finetune" and not head_only:
        for module in _tail(model):
            module.requires_grad_(True)
            module.train()


def _rate(step: int, start: int, end: int) -> float:
    """Linear warm-up over WARMUP of [start, end), then cosine down to zero; 0 outside."""
    if not start <= step < end:
        return 0.0
    span = end - start
    warm = max(1, round(span * WARMUP))
    t = step - start
    if t < warm:
        return (t + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (t - warm) / max(1, span - warm)))


def _optimizer(model: DenseNet, cfg: TrainConfig, steps: int, head_steps: int):
    mode, lr = cfg.resolved_mode, cfg.resolved_lr
    if mode == "full":
        groups = [{"params": list(model.parameters())}]
        lambdas = [lambda s: _rate(s, 0, steps)]
    else:
        tail = [p for m in _tail(model) for p in m.parameters()] if mode == "finetune" else []
        groups = [{"params": list(model.classifier.parameters())}, {"params": tail}]
        if mode == "head":
            lambdas = [lambda s: _rate(s, 0, steps), lambda s: 0.0]
        else:
            lambdas = [lambda s: _rate(s, 0, head_steps) + TAIL_RATE * _rate(s, head_steps, steps),
                       lambda s: TAIL_RATE * _rate(s, head_steps, steps)]
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


# -- measuring -------------------------------------------------------------------
@torch.no_grad()
def validate(model: nn.Module, loader, device: torch.device) -> tuple[float, float, torch.Tensor]:
    """(accuracy, mean cross-entropy, energies) over ``loader`` in eval mode."""
    model.eval()
    correct, loss, n, energies = 0, 0.0, 0, []
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x).float()
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        energies.append(energy(logits).cpu())
        n += len(y)
    return correct / max(n, 1), loss / max(n, 1), torch.cat(energies) if energies else torch.zeros(0)


def _feature_loader(plan: Plan, model: DenseNet, device: torch.device, batch: int, events: TrainEvents,
                    shuffle_seed: int | None):
    """Head mode: pooled features of every picture, through the disk cache; then batches of vectors."""
    cache = FeatureCache(network_digest(model.state_dict(), plan.preprocessing))

    def vectors(dataset: FolderDataset) -> torch.utils.data.TensorDataset:
        digests = [file_digest(path) for path, _ in dataset.files]
        missing = [i for i, d in enumerate(digests) if cache.get(d) is None]
        model.eval()
        for start in range(0, len(missing), batch):
            if events.cancelled():
                cache.save()
                raise Cancelled("training was stopped")
            chunk = missing[start:start + batch]
            x = torch.stack([dataset.prepared(i) for i in chunk]).to(device, memory_format=torch.channels_last)
            with torch.no_grad():
                pooled = model.pooled_features(x)
            for i, v in zip(chunk, pooled):
                cache.put(digests[i], v)
            events.log(f"features: {min(start + batch, len(missing))}/{len(missing)} new pictures")
        cache.save()
        labels = torch.tensor([label for _, label in dataset.files])
        return torch.utils.data.TensorDataset(torch.stack([cache.get(d) for d in digests]), labels)

    return vectors(plan.train), vectors(plan.val)


# -- the loop ----------------------------------------------------------------------
def checkpoint_dict(model: DenseNet, cfg: TrainConfig, plan: Plan, figures: dict, threshold: float) -> dict:
    def plain(value):
        return list(value) if isinstance(value, tuple) else value

    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "class_names": list(plan.classes),
        "arch": {k: plain(v) for k, v in asdict(model.config).items()},
        "preprocessing": plan.preprocessing.to_dict(),
        "unfamiliar": {"score": "energy", "threshold": threshold, "quantile": UNFAMILIAR_QUANTILE},
        "training": {**figures, "dataset": cfg.data, "dataset_seed": cfg.seed, "init": cfg.init,
                     "mode": cfg.resolved_mode, "augment": cfg.augment, "counts": plan.counts,
                     "validation_folder": cfg.val_folder, "validation_files": plan.validation_files,
                     "config": {k: plain(v) for k, v in asdict(cfg).items() if k != "resume"}},
    }


def _save(obj: dict, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f), overwrite=True)


def _steps_per_epoch(cfg: TrainConfig, n_train: int, batch: int) -> int:
    if cfg.data == "shapes":
        return cfg.steps_per_epoch
    # the last batch is kept unless it holds a single picture (batch norm needs two)
    return n_train // batch if n_train % batch == 1 else math.ceil(n_train / batch)


def train(cfg: TrainConfig, events: TrainEvents | None = None) -> dict:
    """Train, keep the best checkpoint at ``cfg.out``; return the run's summary (also for ``--json``).

    Raises ``DenseLensError`` for unusable data or start points and
    ``Cancelled`` only when stopped before the first epoch finished; a later
    stop returns the summary with ``stopped`` set (the best epoch is saved).
    """
    events = events or TrainEvents()
    mode = cfg.resolved_mode
    if mode not in MODES:
        raise DenseLensError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if cfg.augment not in AUGMENTATIONS:
        raise DenseLensError(f"unknown augmentation {cfg.augment!r}; choose from {', '.join(AUGMENTATIONS)}")
    if mode == "head" and cfg.init == "scratch":
        raise DenseLensError("--mode head trains only a new classifier: it needs a trained start point "
                             "(--init densenet121, demo or a checkpoint), not scratch")
    if cfg.input_size is not None and not MIN_INPUT_SIZE <= cfg.input_size <= MAX_INPUT_SIZE:
        raise DenseLensError(f"the input size must be {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} pixels, "
                             f"not {cfg.input_size}")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise DenseLensError(f"the validation fraction must be between 0 and 1, not {cfg.val_fraction}")
    out = Path(cfg.out)
    last_path = out.with_name(out.stem + ".last.pth")
    if cfg.resume and not last_path.is_file():
        raise DenseLensError(f"nothing to resume: {last_path} does not exist (it is written after every epoch "
                             f"of a run with --out {out})")
    device, _warning = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    started = time.time()
    plan = _plan(cfg, events)
    if plan.check is not None:
        for line in plan.check.summary():
            events.log(line)
    if plan.class_weights is not None:
        events.log("the loss weights every class by the inverse of its share, to balance them")
    model = plan.model.to(device, memory_format=torch.channels_last)
    if mode == "head":
        train_set, val_set = _feature_loader(plan, model, device, max(cfg.batch_size, 32), events, cfg.seed)
        net: nn.Module = model.classifier
    else:
        train_set, val_set, net = plan.train, plan.val, model
    n_train = len(train_set)
    batch = max(1, min(cfg.batch_size, n_train))
    steps_per_epoch = _steps_per_epoch(cfg, n_train, batch)
    total_steps = cfg.epochs * steps_per_epoch
    head_epochs = _phases(mode, cfg.epochs)
    optimizer, scheduler = _optimizer(model, cfg, total_steps, head_epochs * steps_per_epoch)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    schedule = {"epochs": cfg.epochs, "steps": total_steps, "batch_size": batch, "lr": cfg.resolved_lr,
                "mode": mode, "init": cfg.init, "data": cfg.data}
    start_epoch, best, history, samples_seen = 0, {"val_accuracy": -1.0, "val_loss": math.inf}, [], 0
    if cfg.resume:
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        if state.get("schedule") != schedule:
            raise DenseLensError(f"{last_path} was made with {state.get('schedule')}; resume with the same "
                                 f"data, --init, --mode, --epochs, --batch-size and --lr")
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, best, history = state["epoch"], state["best"], state["history"]
        samples_seen = state["samples_seen"]
        events.log(f"resumed from {last_path} after epoch {start_epoch}")
        if start_epoch >= cfg.epochs and not out.is_file():
            raise DenseLensError(f"{last_path} is a finished run, but its best checkpoint {out} is gone")
    val_loader = DataLoader(val_set, batch_size=max(batch, 64), num_workers=0 if mode == "head" else cfg.workers)
    elapsed = sum(h["seconds"] for h in history)
    stopped = False
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        head_only = epoch < head_epochs
        _set_trainable(model, mode, head_only)
        dataset = train_set
        if cfg.data == "shapes":
            dataset = ShapesDataset(cfg.seed * 10_000 + epoch, steps_per_epoch * batch, plan.preprocessing.input_size)
        elif isinstance(dataset, FolderDataset):
            dataset.epoch = epoch
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=n_train % batch == 1,
                            num_workers=0 if mode == "head" else cfg.workers,
                            generator=torch.Generator().manual_seed(cfg.seed + epoch))
        running, seen = 0.0, 0
        weight = plan.class_weights.to(device) if plan.class_weights is not None else None
        for step, (x, y) in enumerate(loader, start=1):
            if events.cancelled():
                stopped = True
                break
            x, y = x.to(device), y.to(device)
            if x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", enabled=amp):
                logits = net(x)
            loss = F.cross_entropy(logits.float(), y, weight=weight, label_smoothing=0.05)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            running += loss.item() * len(y)
            seen += len(y)
            if events.step:
                events.step(epoch + 1, step, steps_per_epoch, running / seen)
        if stopped:
            events.log(f"stopped during epoch {epoch + 1}; the best epoch so far is kept")
            break
        samples_seen += seen
        val_acc, val_loss, energies = validate(net, val_loader, device)
        seconds = time.time() - t0
        elapsed += seconds
        row = {"epoch": epoch + 1, "train_loss": running / max(seen, 1), "val_accuracy": val_acc,
               "val_loss": val_loss, "seconds": seconds, "phase": "head" if head_only else mode}
        history.append(row)
        events.log(f"epoch {epoch + 1}/{cfg.epochs}: train loss {row['train_loss']:.4f}  val accuracy "
                   f"{val_acc * 100:.2f}%  val loss {val_loss:.4f}  ({seconds:.0f} s)")
        if val_acc > best["val_accuracy"] or (val_acc == best["val_accuracy"] and val_loss < best["val_loss"]):
            best = {"val_accuracy": val_acc, "val_loss": val_loss, "epoch": epoch + 1}
            threshold = float(torch.quantile(energies, UNFAMILIAR_QUANTILE)) if len(energies) else 0.0
            figures = {"best": best, "history": history, "train_seconds": elapsed, "samples_seen": samples_seen}
            _save(checkpoint_dict(model, cfg, plan, figures, threshold), out)
        _save({"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch + 1,
               "best": best, "history": history, "schedule": schedule, "samples_seen": samples_seen}, last_path)
        if events.epoch:
            events.epoch(row)
    if not history:
        raise Cancelled("training was stopped before the first epoch finished; nothing was saved")
    events.log(f"best val accuracy {best['val_accuracy'] * 100:.2f}% at epoch {best.get('epoch')}; "
               f"saved {out}")
    return {"checkpoint": str(out), "classes": plan.classes, "counts": plan.counts, "init": cfg.init,
            "mode": mode, "input_size": plan.preprocessing.input_size, "history": history, "best": best,
            "best_epoch": best["epoch"], "val_accuracy": best["val_accuracy"], "samples_seen": samples_seen,
            "seconds": time.time() - started, "stopped": stopped,
            "data_check": plan.check.to_dict() if plan.check else None}


def calibrate_unfamiliar(path: str | Path, dataset: Dataset, batch_size: int = 128) -> float:
    """Give checkpoint ``path`` the energy threshold ``UNFAMILIAR_QUANTILE`` of ``dataset`` passes.

    For checkpoints trained before the threshold existed (the demo model's
    first recipe): the file is rewritten in the current format with the same
    weights and metadata, plus ``unfamiliar``.  Returns the threshold.
    """
    path = Path(path)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(read_checkpoint(path), str(path))
    _, _, energies = validate(model, DataLoader(dataset, batch_size=batch_size), torch.device("cpu"))
    threshold = float(torch.quantile(energies, UNFAMILIAR_QUANTILE))
    raw.update({"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION,
                "unfamiliar": {"score": "energy", "threshold": threshold, "quantile": UNFAMILIAR_QUANTILE}})
    _save(raw, path)
    return threshold
