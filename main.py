"""DenseLens entry point: the desktop app by default, headless subcommands for batches.

    python main.py                      # the desktop app
    python main.py classify PATH...     # top-k predictions
    python main.py explain PATH... --out DIR
    python main.py info [--model M]     # architecture report
"""

from __future__ import annotations

import sys

COMMANDS = ("classify", "explain", "info")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from model.cli import main as cli_main

    if argv and (argv[0] in COMMANDS or argv[0].startswith("-")):
        return cli_main(argv)
    # The desktop app arrives with the GUI issue; until then show what the
    # headless tool offers and the default network's architecture.
    cli_main([])
    print()
    return cli_main(["info"])


if __name__ == "__main__":
    sys.exit(main())
