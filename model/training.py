"""Training a DenseNet on the procedural shapes or on a folder of labelled images.

Seeded, validated every epoch, keeping the best checkpoint, resumable: the
state after each epoch (model, optimiser, scheduler, figures) goes to
``<out>.last.pth`` and ``--resume`` carries on from it.  Checkpoints are
plain dicts of tensors and numbers, readable with ``weights_only=True``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from model import preprocess as pp
from model.checkpoint_metadata import FORMAT_VERSION, MAX_INPUT_SIZE, MIN_INPUT_SIZE
from model.densenet import DenseNet, DenseNetConfig
from model.errors import DenseLensError
from model.images import IMAGE_EXTENSIONS, load_image
from model.shapes import CLASSES, sample
from model.zoo import Preprocessing

CHECKPOINT_FORMAT = f"denselens-checkpoint-{FORMAT_VERSION}"
VALIDATION_SEED_OFFSET = 1_000_003  # validation draws from a stream training never sees


@dataclass
class TrainConfig:
    out: str
    data: str = "shapes"  # "shapes" or a folder with one sub-folder per class
    epochs: int = 12
    steps_per_epoch: int = 100
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01
    input_size: int = 96
    growth_rate: int = 12
    block_config: tuple[int, ...] = (6, 8, 8)
    num_init_features: int = 24
    stem: str = "imagenet"
    seed: int = 0
    val_size: int = 1000
    workers: int = 1
    memory_efficient: bool = False
    resume: bool = False
    extra: dict = field(default_factory=dict)


class ShapesDataset(Dataset):
    """``length`` samples of the shapes stream ``seed``, as normalised tensors."""

    def __init__(self, seed: int, length: int, size: int) -> None:
        self.seed, self.length, self.size = seed, length, size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        s = sample(self.seed, index, (self.size, self.size))
        return pp.to_tensor(s.image), s.label


class FolderDataset(Dataset):
    """One sub-folder per class; images resized to the input size, random flips for training."""

    def __init__(self, files: list[tuple[Path, int]], size: int, augment: bool, seed: int) -> None:
        self.files, self.size, self.augment, self.seed = files, size, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.files[index]
        loaded = load_image(path)
        img = pp.analysed_image(loaded.image, pp.plan(loaded.original_size, "center-crop", self.size))
        x = pp.to_tensor(img)
        if self.augment and np.random.default_rng([self.seed, self.epoch, index]).random() < 0.5:
            x = x.flip(-1)
        return x, label


def scan_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DenseLensError(f"{root}: needs at least two sub-folders, one per class")
    files = []
    for i, name in enumerate(classes):
        for dirpath, _, names in os.walk(root / name):
            files.extend((Path(dirpath) / n, i) for n in sorted(names) if Path(n).suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DenseLensError(f"{root}: no images found in the class folders")
    return classes, files


def _datasets(cfg: TrainConfig, epoch_samples: int) -> tuple[list[str], Callable[[int], Dataset], Dataset]:
    if cfg.data == "shapes":
        def train_for(epoch: int) -> Dataset:
            # every epoch sees new pictures: the stream is unlimited
            return ShapesDataset(cfg.seed * 10_000 + epoch, epoch_samples, cfg.input_size)
        val = ShapesDataset(cfg.seed + VALIDATION_SEED_OFFSET, cfg.val_size, cfg.input_size)
        return list(CLASSES), train_for, val
    classes, files = scan_folder(Path(cfg.data))
    order = np.random.default_rng(cfg.seed).permutation(len(files))
    n_val = max(1, len(files) // 10)
    val_files = [files[i] for i in order[:n_val]]
    train_files = [files[i] for i in order[n_val:]]
    train = FolderDataset(train_files, cfg.input_size, augment=True, seed=cfg.seed)

    def train_for(epoch: int) -> Dataset:
        train.epoch = epoch
        return train
    return classes, train_for, FolderDataset(val_files, cfg.input_size, augment=False, seed=cfg.seed)


def build(cfg: TrainConfig, num_classes: int) -> DenseNet:
    config = DenseNetConfig(cfg.growth_rate, tuple(cfg.block_config), cfg.num_init_features, 4, 0.5, 0.0,
                            num_classes, cfg.stem)
    return DenseNet(config, memory_efficient=cfg.memory_efficient)


@torch.no_grad()
def evaluate(model: DenseNet, loader: DataLoader) -> tuple[float, float]:
    """(accuracy, mean cross-entropy)."""
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for x, y in loader:
        logits = model(x.contiguous(memory_format=torch.channels_last))
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    return correct / n, loss / n


def checkpoint_dict(model: DenseNet, cfg: TrainConfig, classes: list[str], figures: dict) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "class_names": list(classes),
        "arch": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(model.config).items()},
        "preprocessing": Preprocessing(cfg.input_size, pp.IMAGENET_MEAN, pp.IMAGENET_STD, "full").to_dict(),
        "training": {**figures, "dataset": cfg.data, "dataset_seed": cfg.seed,
                     "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()
                                if k not in ("resume", "extra")}},
    }


def _atomic_save(obj: dict, path: Path) -> None:
    """Write ``obj`` to ``path`` whole or not at all: a failed write leaves the old file and no debris."""
    tmp = path.with_name(f".{path.name}.part")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def train(cfg: TrainConfig, log: Callable[[str], None] | None = None) -> dict:
    """Train, keep the best checkpoint at ``cfg.out``; return the final figures."""
    from tqdm import tqdm

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if not MIN_INPUT_SIZE <= cfg.input_size <= MAX_INPUT_SIZE:  # what read_checkpoint accepts
        raise DenseLensError(f"the input size must be {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} pixels, "
                             f"not {cfg.input_size}")
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    last_path = out.with_name(out.stem + ".last.pth")
    epoch_samples = cfg.steps_per_epoch * cfg.batch_size
    classes, train_for, val_set = _datasets(cfg, epoch_samples)
    model = build(cfg, len(classes)).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.epochs * math.ceil(len(train_for(0)) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total_steps,
                                                    pct_start=0.15)
    start_epoch, best, history = 0, {"val_accuracy": -1.0}, []
    schedule = {"epochs": cfg.epochs, "steps": total_steps, "batch_size": cfg.batch_size, "lr": cfg.lr}
    if cfg.resume and last_path.exists():
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        if state.get("schedule") != schedule:
            raise DenseLensError(f"{last_path} was made with {state.get('schedule')}; resume with the same "
                                 f"--epochs, --steps-per-epoch, --batch-size and --lr")
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best, history = state["epoch"], state["best"], state["history"]
        log(f"resumed from {last_path} after epoch {start_epoch}")
    val_loader = DataLoader(val_set, batch_size=128, num_workers=cfg.workers)
    started = time.time() - sum(h["seconds"] for h in history)
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        t0 = time.time()
        loader = DataLoader(train_for(epoch), batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.workers,
                            generator=torch.Generator().manual_seed(cfg.seed + epoch), drop_last=True)
        running, seen = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", file=sys.stderr, unit="batch", leave=False)
        for x, y in bar:
            logits = model(x.contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits, y, label_smoothing=0.05)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.item() * len(y)
            seen += len(y)
            bar.set_postfix(loss=f"{running / seen:.3f}")
        bar.close()
        val_acc, val_loss = evaluate(model, val_loader)
        row = {"epoch": epoch + 1, "train_loss": running / max(seen, 1), "val_accuracy": val_acc,
               "val_loss": val_loss, "seconds": time.time() - t0}
        history.append(row)
        log(f"epoch {epoch + 1}/{cfg.epochs}: train loss {row['train_loss']:.4f}  val accuracy "
            f"{val_acc * 100:.2f}%  val loss {val_loss:.4f}  ({row['seconds']:.0f} s)")
        if val_acc > best["val_accuracy"]:
            best = {"val_accuracy": val_acc, "val_loss": val_loss, "epoch": epoch + 1}
            figures = {"best": best, "history": history, "train_seconds": time.time() - started,
                       "samples_seen": (epoch + 1) * epoch_samples}
            _atomic_save(checkpoint_dict(model, cfg, classes, figures), out)
        _atomic_save({"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "best": best,
                      "history": history, "schedule": schedule}, last_path)
    log(f"best val accuracy {best['val_accuracy'] * 100:.2f}% at epoch {best.get('epoch')}; saved {out}")
    return {"best": best, "history": history}
