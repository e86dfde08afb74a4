"""DenseLens entry point: the desktop app by default, headless subcommands for batches.

    python main.py [--model NAME|FILE] [--device D] [IMAGE...]   # the desktop app
    python main.py classify PATH...     # top-k predictions
    python main.py explain PATH... --out DIR
    python main.py info [--model M]     # architecture report
    python main.py train --out FILE     # train a DenseNet (shapes or a folder per class)
    python main.py --self-test          # check an installation, JSON report

Parsing lives in ``cli/``; the app in ``gui/``; the engine in ``model/``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--self-test"]:
        from gui.self_test import run as self_test

        return self_test(argv[1:])
    from cli.main import is_command_line, parse_app_args
    from cli.main import main as cli_main

    if is_command_line(argv):
        return cli_main(argv)
    options = parse_app_args(argv)  # a usage error exits 2 here, before any window
    import gui.app

    return gui.app.run(options.paths, model=options.model, device=options.device)


if __name__ == "__main__":
    sys.exit(main())
