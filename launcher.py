"""The bundle's entry point (build.spec): what the program does depends on the name it was started under.

    DenseLens [--model M] [--device D] [IMAGE...]    the desktop app (no arguments: the app)
    denselens-cli COMMAND ...                        the headless commands (no arguments: the help)

On Linux and macOS ``denselens-cli`` is a symbolic link to ``DenseLens`` (one executable, one copy of the
Python archive), so the name in ``sys.argv[0]`` is the only difference; on Windows they are two
executables built from this same script.  Everything else is ``main.main``: the same routing as
``python main.py``.  Before anything loads Qt, a UTF-8 locale is chosen (``gui.qt_locale``).
"""

from __future__ import annotations

import sys

CLI_NAMES = ("denselens-cli",)


def is_cli_name(program: str) -> bool:
    """Whether ``program`` (as ``cli.main.program_name`` gives it) is the command-line program's name."""
    return program.lower() in CLI_NAMES


def main(argv: list[str] | None = None) -> int:
    from gui.qt_locale import use_utf8_locale

    use_utf8_locale()
    args = sys.argv[1:] if argv is None else list(argv)
    from cli.main import program_name

    if not args and is_cli_name(program_name()):
        args = ["--help"]  # the command-line program never opens a window by itself
    import main as entry

    return entry.main(args)


if __name__ == "__main__":
    sys.exit(main())
