"""DenseLens entry point: the desktop app by default, headless subcommands for batches.

    python main.py [IMAGE...]           # the desktop app
    python main.py classify PATH...     # top-k predictions
    python main.py explain PATH... --out DIR
    python main.py info [--model M]     # architecture report
    python main.py train --out FILE     # train a DenseNet (shapes or a folder per class)
    python main.py --self-test          # check an installation, JSON report
"""

from __future__ import annotations

import sys

COMMANDS = ("classify", "explain", "info", "train")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--self-test"]:
        from gui.self_test import run as self_test

        return self_test()
    if argv and (argv[0] in COMMANDS or argv[0].startswith("-")):
        from model.cli import main as cli_main

        return cli_main(argv)
    from gui.app import run

    return run(argv)  # the desktop app, with any image paths given


if __name__ == "__main__":
    sys.exit(main())
