"""Parsing and dispatch: the headless commands, and the options of the desktop app.

    main.py [--model MODEL] [--device DEVICE] [IMAGE...]   the desktop app (``parse_app_args``)
    main.py COMMAND ...                                  a headless command (``main``)

Exit codes: 0 every image done, 1 some images failed (each with a message) or stdout could not be
written, 2 usage errors (unknown command, model or flag; weights unavailable), 130 interrupted.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cli import audit, classify, evaluate, explain, info, train
from cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    OutputError,
    UsageError,
    add_model_options,
    check_device,
    check_model_spec,
    emit,
    flush_stdout,
    silence_stdout,
)

COMMANDS = {"classify": classify, "explain": explain, "evaluate": evaluate, "audit": audit, "info": info,
            "train": train}


def program_name() -> str:
    """The name the user ran: the executable's in a bundle (DenseLens, denselens-cli), else ``main.py``."""
    if getattr(sys, "frozen", False) and sys.argv and sys.argv[0]:
        name = Path(sys.argv[0]).name
        return name[:-4] if name.lower().endswith(".exe") else name
    return "main.py"


PROG = program_name()
_CLI_FLAGS = ("-h", "--help", "--version")
USAGE = (f"{PROG} [--model MODEL] [--device DEVICE] [IMAGE ...]   (the desktop app)\n"
         f"       {PROG} COMMAND ...                                  (headless; {PROG} COMMAND --help)\n"
         f"       {PROG} --self-test | --version | --help")


class Parser(argparse.ArgumentParser):
    """argparse, except that help or version text lost on a full stdout is an error, not silence."""

    def _print_message(self, message: str, file=None) -> None:
        if not message:
            return
        file = file or sys.stderr
        try:
            file.write(message)
        except OSError as e:
            if file is not sys.stdout:
                return  # stderr gone: nothing better to do (argparse's own behaviour)
            raise OutputError(e) from e


# -- the desktop app's options ------------------------------------------------
@dataclass(frozen=True)
class AppOptions:
    """What ``main.py [--model M] [--device D] [IMAGE...]`` asks of the app; None means its own choice."""

    paths: list[str] = field(default_factory=list)
    model: str | None = None
    device: str | None = None


def is_command_line(argv: Sequence[str]) -> bool:
    """True when ``argv`` is for the headless commands (a command word, --help, --version)."""
    return bool(argv) and (argv[0] in COMMANDS or argv[0] in _CLI_FLAGS)


def app_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, usage=f"{PROG} [--model MODEL] [--device DEVICE] [IMAGE ...]",
                                description="Open the DenseLens desktop app, with a model and pictures.")
    add_model_options(p, default=None)
    p.add_argument("paths", nargs="*", metavar="IMAGE", help="pictures or folders to open")
    return p


def parse_app_args(argv: Sequence[str]) -> AppOptions:
    """The app's options, validated before any window opens; usage errors exit 2."""
    parser = app_parser()
    argv = list(argv)
    try:
        check_command_word(argv)
        args = parser.parse_intermixed_args(argv)
        if args.model is not None:
            check_model_spec(args.model)
        if args.device is not None:
            check_device(args.device)
    except UsageError as e:
        parser.error(str(e))
    return AppOptions(list(args.paths), args.model, args.device)


def suggest_command(word: str) -> str | None:
    """The command ``word`` was probably meant to be: a close spelling, else a looser one with its initial."""
    names = list(COMMANDS)
    close = difflib.get_close_matches(word.lower(), names, n=1)
    if close:
        return close[0]
    loose = [n for n in difflib.get_close_matches(word.lower(), names, n=len(names), cutoff=0.25)
             if n[:1] == word[:1].lower()]
    return loose[0] if loose else None


def check_command_word(argv: Sequence[str]) -> None:
    """A first word that is neither a command nor an existing file or folder is a mistyped command."""
    if not argv or argv[0].startswith("-") or argv[0] in COMMANDS:
        return
    word = argv[0]
    looks_like_path = any(sep in word for sep in ("/", os.sep, os.altsep or "/")) or Path(word).suffix
    if looks_like_path or Path(word).exists():
        return
    guess = suggest_command(word)
    hint = f" (did you mean {guess!r}?)" if guess else f"; commands: {', '.join(COMMANDS)}"
    raise UsageError(f"unknown command {word!r}{hint}; to open pictures, give existing files or folders")


# -- the headless commands ----------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from model import __version__

    parser = Parser(
        prog=PROG, usage=USAGE, description="DenseLens: see what a DenseNet sees. "
        "Without a command, the desktop app opens (with --model/--device and pictures, if given).",
        epilog="--self-test checks an installation (model, inference, export, window) and prints a JSON report.")
    parser.add_argument("--version", action="version", version=f"DenseLens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def _output_failed(error: OutputError) -> int:
    """stdout is full or closed: say so in one line (unless a pipe reader just left), then go quiet."""
    if not isinstance(error.error, BrokenPipeError):  # `| head` closing early is not an error
        print(f"{PROG}: error: {error}", file=sys.stderr)
    silence_stdout()
    return EXIT_SOME_FAILED


def _run(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    try:
        check_command_word(argv)
    except UsageError as e:
        parser.error(str(e))
    args = parser.parse_args(argv)
    if args.command is None:
        emit(parser.format_help().rstrip("\n"))
        return EXIT_OK
    try:
        return COMMANDS[args.command].run(args)
    except UsageError as e:
        parser.exit(EXIT_USAGE, f"{parser.prog} {args.command}: error: {e}\n")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as e:  # output piped into `head` and the like
        raise OutputError(e) from e


def _tolerant_streams() -> None:
    """A console that cannot show a character (cp1252 and a Chinese file name) gets an escape, not a crash."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or exotic stream: leave it as it is
                continue


def main(argv: Sequence[str] | None = None) -> int:
    """Run a headless command; returns the exit code (argparse's usage errors raise SystemExit(2))."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    _tolerant_streams()
    try:
        code = _run(parser, argv)
        flush_stdout()
        return code
    except OutputError as e:
        return _output_failed(e)
    except SystemExit:  # help, version or a usage error printed: it must reach stdout too
        try:
            flush_stdout()
        except OutputError as e:
            raise SystemExit(_output_failed(e)) from None
        raise
