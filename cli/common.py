"""What the commands share: exit codes, usage errors, model options, loading, input gathering, output.

Every list of choices comes from a registry: models from ``model.zoo``, preprocessing modes from
``model.zoo.PREPROCESS_MODES``.  Heavy imports (torch) happen inside the functions that need them, so
``--help`` and the app's start stay fast.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from model.export import escape_surrogates
from model.zoo import MODELS, PREPROCESS_MODES, choices_text, preprocess_help

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
PROGRESS_THRESHOLD = 3  # show a progress bar for more images than this
DEFAULT_MODEL = next(iter(MODELS))
DEVICE_HELP = "auto|cpu|cuda|cuda:N|mps"
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?", re.IGNORECASE)


class UsageError(Exception):
    """Bad command line: printed with the usage line, exit code 2."""


class OutputError(Exception):
    """Standard output cannot be written (full disk, closed pipe): one line on stderr, exit code 1."""

    def __init__(self, error: OSError) -> None:
        from model.export import describe_os_error

        super().__init__(f"cannot write to standard output: {describe_os_error(error)}")
        self.error = error


# -- options --------------------------------------------------------------
def model_help() -> str:
    return f"{choices_text()}|FILE (.pth/.pt/.safetensors)"


def add_model_options(p: argparse.ArgumentParser, default: str | None = DEFAULT_MODEL) -> None:
    p.add_argument("--model", default=default, metavar="MODEL",
                   help=f"{model_help()}" + (f"; default {default}" if default else ""))
    add_device_option(p, "auto" if default else None)


def add_device_option(p: argparse.ArgumentParser, default: str | None = "auto") -> None:
    p.add_argument("--device", default=default, metavar="DEVICE",
                   help=f"{DEVICE_HELP} (default auto: CUDA, then MPS, then CPU)")


def add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (recursive)")
    p.add_argument("--topk", type=int, default=5, metavar="K", help="predictions per image (default 5)")
    modes = "; ".join(f"{mode}: {preprocess_help(mode)}" for mode in PREPROCESS_MODES)
    p.add_argument("--preprocess", choices=PREPROCESS_MODES, default=None,
                   help=f"{modes} (default: the model's own, usually {PREPROCESS_MODES[0]})".replace("%", "%%"))
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def check_model_spec(spec: str) -> str:
    """A registered name or an existing file, else a UsageError listing the choices."""
    if spec in MODELS or Path(spec).exists():
        return spec
    raise UsageError(f"unknown model {spec!r}: use one of {choices_text().replace('|', ', ')}, "
                     "or the path of a .pth/.pt/.safetensors file")


def check_device(spec: str) -> str:
    if _DEVICE.fullmatch(spec.strip()):
        return spec
    raise UsageError(f"unknown device {spec!r}; choose from {DEVICE_HELP.replace('|', ', ')}")


# -- loading and inputs ---------------------------------------------------
def progress_bar(total: int, quiet: bool, unit: str = "img"):
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, unit=unit, dynamic_ncols=True,
                disable=quiet or total <= PROGRESS_THRESHOLD)


def load_classifier(args: argparse.Namespace):
    """Load ``--model`` on ``--device``; problems become UsageError with a way out."""
    from model.classifier import DenseNetClassifier
    from model.errors import DenseLensError, WeightsUnavailableError

    spec = check_model_spec(args.model)
    bar = None

    def on_progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm
            bar = tqdm(total=total, file=sys.stderr, unit="B", unit_scale=True,
                       desc=f"downloading {spec}", disable=getattr(args, "quiet", False))
        bar.update(done - bar.n)

    try:
        clf = DenseNetClassifier.load(spec, device=args.device, progress=on_progress)
    except WeightsUnavailableError as e:  # the engine's message names no flags: say how, in this front end's terms
        raise UsageError(f"{e} (here: --model demo, or --model FILE)") from e
    except (ValueError, DenseLensError) as e:
        raise UsageError(str(e)) from e
    finally:
        if bar is not None:
            bar.close()
    for warning in clf.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return clf


def preprocess_mode(args: argparse.Namespace, clf) -> str:
    """``--preprocess``, else the loaded model's own mode."""
    return args.preprocess or clf.preprocessing.mode


def gather(paths: Sequence[str]) -> list[Path]:
    from model.images import collect_images

    found = collect_images(paths)
    if found.skipped:
        print(f"note: skipped {len(found.skipped)} non-image file(s) in the given folders", file=sys.stderr)
    for path, reason in found.problems:
        print(escape_surrogates(f"warning: cannot read {path}: {reason}; skipped"), file=sys.stderr)
    return found.images


# -- output ---------------------------------------------------------------
def emit(text: str, bar=None) -> None:
    """One line (or block) on stdout, above the progress bar if there is one; OutputError if it fails."""
    text = escape_surrogates(text)
    try:
        if bar is not None:
            bar.write(text, file=sys.stdout)
        else:
            sys.stdout.write(text + "\n")
    except OSError as e:
        raise OutputError(e) from e


def flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except OSError as e:
        raise OutputError(e) from e


def silence_stdout() -> None:
    """Point stdout at the null device, so Python's final flush of what is left cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a capture object (tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def finish(records: list[dict], as_json: bool, failed: int) -> int:
    """Print the JSON document if asked; exit code 1 if any image failed or none was found."""
    if as_json:
        # ASCII-safe: valid on any console encoding; undecodable bytes of file names come out as \udcXX.
        emit(json.dumps(records, indent=2, ensure_ascii=True))
    if not records:
        print("error: no images found in the given paths", file=sys.stderr)
    return EXIT_SOME_FAILED if failed or not records else EXIT_OK
