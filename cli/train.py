"""``main.py train``: train, fine-tune or retrain the head of a DenseNet on a labelled folder (or the shapes)."""

from __future__ import annotations

import argparse
import json
import sys

from cli.common import EXIT_OK, UsageError, add_device_option, check_device, emit

STEMS = ("imagenet", "small")  # model.densenet.DenseNetConfig.stem


def add_parser(sub) -> None:
    from model.augment import AUGMENTATIONS
    from model.training_modes import MODES
    from model.zoo import choices_text

    p = sub.add_parser(
        "train", help="train a DenseNet on a folder of labelled pictures (one sub-folder per class)",
        description="Train a DenseNet on a folder with one sub-folder of pictures per class. Every picture is "
        "checked first (unreadable ones are listed and skipped); a stratified share is held out for validation "
        "each epoch; the best epoch is saved at --out with its preprocessing, class names, validation files "
        "and the threshold for pictures unlike the training ones. Progress on stderr; resumable with --resume.")
    p.add_argument("--data", default="shapes", metavar="FOLDER",
                   help="a folder with one sub-folder per class, or 'shapes' (the procedural demo dataset)")
    p.add_argument("--out", required=True, metavar="FILE", help="where the best checkpoint goes (.pth)")
    p.add_argument("--init", default="scratch", metavar="START",
                   help=f"the start point: scratch, {choices_text()} (ImageNet weights are downloaded and "
                   "cached), or a DenseNet checkpoint FILE (default: scratch)")
    p.add_argument("--mode", choices=list(MODES), default=None,
                   help="; ".join(f"{name}: {text}" for name, text in MODES.items())
                   + " (default: finetune from trained weights, full from scratch)")
    split = p.add_mutually_exclusive_group()
    split.add_argument("--val-fraction", type=float, default=0.2, metavar="F",
                       help="share of every class held out for validation (default 0.2)")
    split.add_argument("--val-folder", metavar="DIR", help="validate on this folder per class instead")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-size", type=int, default=None, metavar="PX",
                   help="picture side the network sees (default: the start point's; 96 from scratch)")
    p.add_argument("--augment", choices=AUGMENTATIONS, default="light",
                   help="training views: none, light (random crops and flips), strong (also small rotations "
                   "and colour changes); default light")
    add_device_option(p, default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="carry on from <out>.last.pth")
    p.add_argument("--json", action="store_true", help="print a summary of the run as JSON on stdout")
    expert = p.add_argument_group("expert options")
    expert.add_argument("--lr", type=float, default=None, help="peak learning rate (AdamW)")
    expert.add_argument("--steps-per-epoch", type=int, default=100, help="batches per epoch (shapes only)")
    expert.add_argument("--val-size", type=int, default=1000, help="validation pictures (shapes only)")
    expert.add_argument("--growth-rate", type=int, default=12, metavar="K", help="from scratch only")
    expert.add_argument("--blocks", default="6,8,8", metavar="L1,L2,...", help="layers per dense block "
                        "(from scratch only)")
    expert.add_argument("--init-features", type=int, default=24, help="from scratch only")
    expert.add_argument("--stem", choices=STEMS, default=STEMS[0], help="from scratch only")
    expert.add_argument("--workers", type=int, default=1, help="data-loading processes")
    expert.add_argument("--memory-efficient", action="store_true",
                        help="recompute concatenations in backward: less memory, a little slower")


def config_from(args: argparse.Namespace):
    from model.training import TrainConfig

    try:
        blocks = tuple(int(v) for v in args.blocks.split(","))
    except ValueError:
        raise UsageError("--blocks takes layer counts separated by commas, e.g. 6,8,8") from None
    check_device(args.device)
    if args.epochs < 1 or args.batch_size < 1 or args.steps_per_epoch < 1 or min(blocks, default=0) < 1:
        raise UsageError("--epochs, --batch-size, --steps-per-epoch and --blocks must be positive")
    return TrainConfig(out=args.out, data=args.data, init=args.init, mode=args.mode, val_fraction=args.val_fraction,
                       val_folder=args.val_folder, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                       batch_size=args.batch_size, lr=args.lr, input_size=args.input_size, augment=args.augment,
                       growth_rate=args.growth_rate, block_config=blocks, num_init_features=args.init_features,
                       stem=args.stem, seed=args.seed, val_size=args.val_size, workers=args.workers,
                       memory_efficient=args.memory_efficient, device=args.device, resume=args.resume)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.errors import Cancelled, DenseLensError, WeightsUnavailableError
    from model.export import escape_surrogates
    from model.training import TrainEvents, train

    cfg = config_from(args)
    bars: dict[str, tqdm] = {}

    def log(message: str) -> None:
        tqdm.write(escape_surrogates(message), file=sys.stderr)

    def bar(key: str, total: int, desc: str, unit: str) -> tqdm:
        if key not in bars or bars[key].total != total or bars[key].desc != desc:
            if key in bars:
                bars[key].close()
            bars[key] = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
        return bars[key]

    def checking(done: int, total: int) -> None:
        b = bar("check", total, "checking pictures", "img")
        b.update(done - b.n)
        if done >= total:
            bars.pop("check").close()

    def step(epoch: int, done: int, steps: int, loss: float) -> None:
        b = bar("epoch", steps, f"epoch {epoch}/{cfg.epochs}", "batch")
        b.update(done - b.n)
        b.set_postfix(loss=f"{loss:.3f}", refresh=False)

    try:
        summary = train(cfg, TrainEvents(log=log, checking=checking, step=step))
    except WeightsUnavailableError as e:
        raise UsageError(f"{e} (start elsewhere: --init demo, --init scratch or --init FILE)") from e
    except Cancelled as e:
        raise UsageError(str(e)) from e
    except DenseLensError as e:
        raise UsageError(str(e)) from e
    finally:
        for b in bars.values():
            b.close()
    if args.json:
        emit(json.dumps(summary, indent=2, ensure_ascii=True))
    return EXIT_OK
