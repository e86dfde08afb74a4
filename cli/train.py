"""``main.py train``: train a DenseNet on the procedural shapes or a folder of labelled images."""

from __future__ import annotations

import argparse

from cli.common import EXIT_OK, UsageError

STEMS = ("imagenet", "small")  # model.densenet.DenseNetConfig.stem


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a DenseNet (shapes dataset or a folder per class)",
                       description="Train a DenseNet-BC from model/densenet.py. Progress on stderr, validation "
                       "each epoch, the best checkpoint at --out, resumable with --resume.")
    p.add_argument("--data", default="shapes", metavar="shapes|FOLDER",
                   help="'shapes' (procedural, unlimited) or a folder with one sub-folder per class")
    p.add_argument("--out", required=True, metavar="FILE", help="where the best checkpoint goes (.pth)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--steps-per-epoch", type=int, default=100, help="batches per epoch (shapes only)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW, one-cycle schedule)")
    p.add_argument("--input-size", type=int, default=96, metavar="PX")
    p.add_argument("--growth-rate", type=int, default=12, metavar="K")
    p.add_argument("--blocks", default="6,8,8", metavar="L1,L2,...", help="layers per dense block")
    p.add_argument("--init-features", type=int, default=24)
    p.add_argument("--stem", choices=STEMS, default=STEMS[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-size", type=int, default=1000, help="validation images (shapes only)")
    p.add_argument("--workers", type=int, default=1, help="data-loading processes")
    p.add_argument("--memory-efficient", action="store_true",
                   help="recompute concatenations in backward: less memory, a little slower")
    p.add_argument("--resume", action="store_true", help="carry on from <out>.last.pth")


def run(args: argparse.Namespace) -> int:
    from model.errors import DenseLensError
    from model.training import TrainConfig, train

    try:
        blocks = tuple(int(v) for v in args.blocks.split(","))
    except ValueError:
        raise UsageError("--blocks takes layer counts separated by commas, e.g. 6,8,8") from None
    if args.epochs < 1 or args.batch_size < 1 or args.steps_per_epoch < 1 or min(blocks, default=0) < 1:
        raise UsageError("--epochs, --batch-size, --steps-per-epoch and --blocks must be positive")
    cfg = TrainConfig(out=args.out, data=args.data, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                      batch_size=args.batch_size, lr=args.lr, input_size=args.input_size,
                      growth_rate=args.growth_rate, block_config=blocks, num_init_features=args.init_features,
                      stem=args.stem, seed=args.seed, val_size=args.val_size, workers=args.workers,
                      memory_efficient=args.memory_efficient, resume=args.resume)
    try:
        train(cfg)
    except DenseLensError as e:
        raise UsageError(str(e)) from e
    return EXIT_OK
