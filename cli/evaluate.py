"""``main.py evaluate``: accuracy, per-class figures, confusion matrix and the worst mistakes on a labelled folder."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path

from cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    UsageError,
    add_model_options,
    emit,
    load_classifier,
    progress_bar,
)
from model.cam import METHODS

DEFAULT_METHOD = next(iter(METHODS))
NAME_WIDTH = 24  # class names are clipped to this in the text tables


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy and confusion matrix on a folder with one sub-folder per class",
                       description="Classify every picture of FOLDER (one sub-folder per class, named after the "
                       "model's classes) and report accuracy, per-class precision, recall and F1, the confusion "
                       "matrix and the most confident mistakes. With --out, also write the confusion matrix as "
                       "a PNG and each mistake's heatmaps for the predicted and the true class.")
    p.add_argument("folder", metavar="FOLDER", help="a folder with one sub-folder of pictures per class")
    add_model_options(p)
    p.add_argument("--out", metavar="DIR", help="write confusion.png and mistakes/ here (created if missing)")
    p.add_argument("--mistakes", type=int, default=8, metavar="N",
                   help="how many of the most confident mistakes to report (default 8)")
    p.add_argument("--layer", metavar="LAYER", help="tap of the mistakes' heatmaps (default: the deepest dense block)")
    p.add_argument("--method", default=DEFAULT_METHOD, metavar="METHOD",
                   help=f"heatmap method for the mistakes: {', '.join(METHODS)} (default {DEFAULT_METHOD})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files left by earlier runs instead of adding _2, _3")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


class Bar:
    """A progress callback that opens its tqdm bar once the total is known."""

    def __init__(self, quiet: bool, desc: str, unit: str = "img") -> None:
        self.quiet, self.desc, self.unit, self.bar = quiet, desc, unit, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = progress_bar(total, self.quiet, self.unit)
            self.bar.set_description(self.desc, refresh=False)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def check_folder_arg(folder: str) -> Path:
    """Fail fast, before the model loads, on a folder that is not there."""
    path = Path(folder)
    if not path.exists():
        raise UsageError(f"{path}: no such folder")
    if not path.is_dir():
        raise UsageError(f"{path}: not a folder; give a folder with one sub-folder of pictures per class")
    return path


def run(args: argparse.Namespace) -> int:
    from model.errors import DenseLensError, ExportError
    from model.explain import default_layer
    from model.export import describe_os_error
    from model.folder_evaluation import evaluate_folder, write_report

    if args.mistakes < 0:
        raise UsageError("--mistakes must be 0 or more")
    if args.method not in METHODS:
        raise UsageError(f"unknown method {args.method!r}; choose from {', '.join(METHODS)}")
    folder = check_folder_arg(args.folder)
    clf = load_classifier(args)
    taps = clf.model.tap_names
    layer = args.layer or default_layer(taps)
    if layer not in taps:
        raise UsageError(f"unknown layer {layer!r}; choose from {', '.join(taps)}")
    out = Path(args.out) if args.out else None
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create the output folder {out}: {describe_os_error(e)}") from e

    bar = Bar(args.quiet, "evaluating")
    try:
        evaluation = evaluate_folder(clf, folder, progress=bar, mistakes=args.mistakes)
    except DenseLensError as e:  # DataError: missing classes, nothing readable
        raise UsageError(str(e)) from e
    finally:
        bar.close()

    files, code = {}, EXIT_OK
    if out is not None:
        bar = Bar(args.quiet, "heatmaps", unit="mistake")
        try:
            files = write_report(evaluation, clf, out, layer=layer, method=args.method, overwrite=args.overwrite,
                                 progress=bar)
        except ExportError as e:
            print(f"error: {e}", file=sys.stderr)
            code = EXIT_SOME_FAILED
        finally:
            bar.close()
    for problem in files.get("problems", []):
        print(f"warning: {problem}", file=sys.stderr)
    if args.json:
        if evaluation.skipped:
            print(f"note: {len(evaluation.skipped)} unreadable picture(s) skipped (listed under \"skipped\")",
                  file=sys.stderr)
        emit(json.dumps(evaluation.to_dict(files), indent=2, ensure_ascii=True))
    else:
        emit(report_text(evaluation, files, out))
    return code


# -- the text report ----------------------------------------------------------
def width(text: str) -> int:
    """Columns ``text`` takes on a terminal (East Asian wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def clip(text: str, columns: int = NAME_WIDTH) -> str:
    if width(text) <= columns:
        return text
    out = ""
    for ch in text:
        if width(out + ch) > columns - 1:
            break
        out += ch
    return out + "\u2026"


def pad(text: str, columns: int, right: bool = False) -> str:
    fill = " " * max(0, columns - width(text))
    return fill + text if right else text + fill


def shown_path(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def class_table(evaluation) -> list[str]:
    shown = evaluation.shown_classes()
    names = [clip(evaluation.classes[i]) for i in shown]
    w = max([width(n) for n in names] + [len("macro average")])
    unfamiliar = evaluation.unfamiliar_counts()
    head = f"{pad('class', w)}  {'count':>6}  {'predicted':>9}  {'precision':>9}  {'recall':>7}  {'F1':>7}"
    lines = [head + ("  unfamiliar" if unfamiliar is not None else ""), "-" * (len(head) + (12 if unfamiliar else 0))]
    figures = evaluation.per_class
    for i, name in zip(shown, names):
        f = figures[i]
        line = (f"{pad(name, w)}  {f.count:>6}  {f.predicted:>9}  {f.precision * 100:>8.1f}%  "
                f"{f.recall * 100:>6.1f}%  {f.f1 * 100:>6.1f}%")
        lines.append(line + (f"  {unfamiliar[i]:>10}" if unfamiliar is not None else ""))
    m = evaluation.macro
    lines.append(f"{pad('macro average', w)}  {evaluation.total:>6}  {'':>9}  {m['precision'] * 100:>8.1f}%  "
                 f"{m['recall'] * 100:>6.1f}%  {m['f1'] * 100:>6.1f}%")
    hidden = len(evaluation.classes) - len(shown)
    if hidden:
        lines.append(f"({hidden} other classes of the model neither occur nor are predicted)")
    return lines


def confusion_table(evaluation) -> list[str]:
    """Rows: ``N name`` of the true class; columns: the predicted class's number N."""
    shown = evaluation.shown_classes()
    names = [f"{k} {clip(evaluation.classes[i])}" for k, i in enumerate(shown)]
    w = max(width(n) for n in names)
    counts = evaluation.confusion
    cell = max(3, len(str(int(counts.max()))), len(str(len(shown) - 1))) + 1
    lines = ["Confusion matrix (rows: true class, columns: predicted class by number)",
             pad("", w) + "".join(f"{k:>{cell}}" for k in range(len(shown)))]
    for name, i in zip(names, shown):
        lines.append(pad(name, w) + "".join(f"{int(counts[i, j]):>{cell}}" for j in shown))
    return lines


def report_text(evaluation, files: dict, out: Path | None) -> str:
    unfamiliar = evaluation.unfamiliar_counts()
    lines = [f"Model: {evaluation.model}    preprocessing: {evaluation.preprocess}",
             f"Folder: {evaluation.root}    pictures: {evaluation.total}"
             + (f", {len(evaluation.skipped)} skipped" if evaluation.skipped else "")
             + (f", {len(evaluation.ignored)} ignored" if evaluation.ignored else ""),
             f"Accuracy: {evaluation.accuracy * 100:.1f}% ({evaluation.correct} of {evaluation.total})"]
    if unfamiliar is not None:
        lines.append(f"Unfamiliar pictures (unlike the training ones): {sum(unfamiliar)}")
    lines += ["", *class_table(evaluation), "", *confusion_table(evaluation), ""]
    mistakes = evaluation.mistakes
    written = files.get("mistakes", [])
    total_mistakes = len(evaluation.all_mistakes())
    if not total_mistakes:
        lines.append("No mistakes.")
    elif mistakes:
        lines.append(f"Most confident mistakes ({len(mistakes)} of {total_mistakes}):")
        for k, r in enumerate(mistakes):
            odd = "  unfamiliar" if r.unfamiliar else ""
            lines.append(f"{k + 1:>3}. {shown_path(r.path, evaluation.root)}: true {evaluation.classes[r.true]} "
                         f"({r.true_probability * 100:.1f}%), predicted {evaluation.classes[r.predicted]} "
                         f"({r.probability * 100:.1f}%){odd}")
            entry = written[k] if k < len(written) else {}
            for kind in ("comparison", "predicted", "true"):
                if kind in entry:
                    lines.append(f"       {kind}: {Path(entry[kind]).name}")
                elif entry and kind != "comparison":
                    lines.append(f"       {kind}: no positive evidence, no overlay")
    else:
        lines.append(f"{total_mistakes} mistakes (none listed: --mistakes 0)")
    for title, entries in (("Skipped (unreadable)", evaluation.skipped), ("Ignored", evaluation.ignored)):
        if entries:
            lines += ["", f"{title}:"] + [f"  {why}" if str(p) in why else f"  {shown_path(p, evaluation.root)}: {why}"
                                          for p, why in entries]
    if evaluation.warnings:
        lines += [""] + [f"warning: {w}" for w in evaluation.warnings]
    lines.append("")
    if out is None:
        lines.append("No files written (--out DIR writes the confusion matrix and the mistakes' heatmaps).")
    elif files:
        count = 1 + sum(len(e) for e in written)
        lines.append(f"Files written to {out}: {count} (confusion matrix: {Path(files['confusion']).name}"
                     + (f"; heatmaps of the mistakes in {Path(out, 'mistakes')}" if written else "") + ")")
    return "\n".join(lines)
