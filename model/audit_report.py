"""The audit's outputs: ``audit.json``, the pictures it names, and ``report.html``.

The pictures are PNGs beside ``audit.json`` (named by class and role, with
Unicode-safe names); ``report.html`` embeds them (base64), so it is one file a
user can open or send.  Everything is written atomically.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from model import preprocess as pp
from model.audit_analysis import ClassAudit, Flag
from model.audit_blur import Example
from model.classifier import DenseNetClassifier
from model.errors import DenseLensError
from model.export import OutputNames, atomic_write, safe_component, save_png
from model.images import load_image
from model.render import colorize, grid, overlay

TILE = 160
EXEMPLARS = 6
BOX_COLOUR = (255, 255, 255)


def _box_pixels(box, w: int, h: int) -> tuple[int, int, int, int]:
    return (round(box[0] * w), round(box[1] * h), round(box[2] * w) - 1, round(box[3] * h) - 1)


def mean_picture(mean: np.ndarray, flags: list[Flag], side: int = TILE) -> Image.Image:
    """The class's mean map, coloured (scaled to its own maximum), with flag boxes outlined."""
    top = float(mean.max())
    heat = np.asarray(Image.fromarray((mean / top if top > 0 else mean).astype(np.float32), mode="F")
                      .resize((side, side), Image.Resampling.BILINEAR)).clip(0, 1)
    picture = Image.fromarray(colorize(heat))
    draw = ImageDraw.Draw(picture)
    for flag in flags:
        draw.rectangle(_box_pixels(flag.box, side, side), outline=BOX_COLOUR, width=2)
    return picture


def analysed_overlay(clf: DenseNetClassifier, path: str, small: np.ndarray) -> Image.Image | None:
    """The analysed picture with its small map upsampled over it; None when it can no longer be read."""
    try:
        loaded = load_image(path)
    except DenseLensError:
        return None
    p = clf.preprocessing
    image = pp.analysed_image(loaded.image, pp.plan(loaded.original_size, p.mode, p.input_size))
    heat = np.asarray(Image.fromarray(small.astype(np.float32), mode="F").resize(image.size,
                                                                                  Image.Resampling.BILINEAR))
    return overlay(image, heat.clip(0, 1), 0.5)


def _tile(image: Image.Image) -> Image.Image:
    """A small analysed picture scaled up to ``TILE`` on its longer side (for the report)."""
    scale = TILE / max(image.size)
    if scale <= 1:
        return image.copy()
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class ReportWriter:
    """Writes the pictures under ``out`` and remembers them for the HTML page."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.names = OutputNames()
        self.pictures: dict[str, bytes] = {}

    def save(self, image: Image.Image, *parts: str) -> str:
        stem = "_".join(safe_component(p) for p in parts)
        path = save_png(image, self.out / f"{stem}.png", overwrite=True, taken=self.names)
        name = path.name
        self.pictures[name] = _png_bytes(image)
        return name

    def class_pictures(self, clf: DenseNetClassifier, audit: ClassAudit, records: list[dict], maps: np.ndarray,
                       examples: dict[int, Example]) -> dict:
        """The class's entry of ``audit.json``, its pictures written."""
        mean = self.save(mean_picture(audit.mean_map, audit.flags), audit.name, "mean")
        clusters = []
        for k, rows in enumerate(audit.clusters, start=1):
            tiles = []
            for r in rows[:EXEMPLARS]:
                picture = analysed_overlay(clf, records[r]["path"], maps[r].astype(np.float32))
                if picture is not None:
                    tiles.append((Path(records[r]["path"]).name[:24], picture))
            title = f"{audit.name}: cluster {k} of {len(audit.clusters)}, {len(rows)} pictures"
            exemplars = self.save(grid(tiles, TILE, title), audit.name, f"cluster{k}") if tiles else None
            clusters.append({"size": len(rows), "exemplars": exemplars, "images": [records[r]["path"] for r in rows]})
        flags = []
        for k, flag in enumerate(audit.flags, start=1):
            entry = {"kind": flag.kind, "box": [round(v, 4) for v in flag.box], "share": round(flag.share, 4),
                     "images": [records[r]["path"] for r in flag.members],
                     "probability_drop": None if flag.probability_drop is None else round(flag.probability_drop, 4),
                     "control_drop": None if flag.control_drop is None else round(flag.control_drop, 4),
                     "tested": flag.tested, "confirmed": flag.confirmed}
            example = examples.get(k - 1)
            if example is not None:
                before, after = _tile(example.before), _tile(example.after)
                ImageDraw.Draw(before).rectangle(_box_pixels(flag.box, *before.size), outline=BOX_COLOUR, width=2)
                entry["before"] = self.save(before, audit.name, f"flag{k}", "before")
                entry["after"] = self.save(after, audit.name, f"flag{k}", "after")
                entry["example"] = {"path": example.path, "probability_before": round(example.p_before, 4),
                                    "probability_after": round(example.p_after, 4)}
            flags.append(entry)
        return {"name": audit.name, "index": audit.index, "count": len(audit.members),
                "accuracy": None if audit.accuracy is None else round(audit.accuracy, 4),
                "mean_heatmap": mean, "clusters": clusters, "flags": flags}

    def html(self, summary: dict) -> None:
        """``report.html``: per class the mean heatmap, the clusters with exemplars, the flags with before/after."""
        def img(name: str | None, alt: str) -> str:
            if not name:
                return ""
            data = base64.b64encode(self.pictures[name]).decode("ascii")
            return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'

        e = html.escape
        flagged = [c for c in summary["classes"] if c["flags"]]
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'><title>DenseLens audit</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em;max-width:75em;color:#222}"
            "h2{border-bottom:1px solid #ccc;padding-bottom:.2em}img{max-width:100%;margin:.3em 0}"
            ".flag{border-left:4px solid #c33;padding:.3em 1em;margin:1em 0;background:#fdf3f3}"
            ".weak{border-left-color:#999;background:#f5f5f5}.row{display:flex;gap:1em;flex-wrap:wrap}"
            "table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left}</style></head><body>",
            f"<h1>What {e(summary['model'])} relies on</h1>",
            f"<p>{summary['images']} pictures in {e(summary['folder'])}; heatmaps: {e(summary['method'])} at "
            f"{e(summary['layer'])}, for each picture's {'true' if summary['labels'] == 'folders' else 'predicted'} "
            f"class. {len(flagged)} of {len(summary['classes'])} classes flagged.</p>",
        ]
        if summary.get("errors"):
            parts.append(f"<p>{len(summary['errors'])} pictures could not be read and were left out.</p>")
        parts.append("<table><tr><th>class</th><th>pictures</th><th>accuracy</th><th>clusters</th><th>flags</th></tr>")
        for c in summary["classes"]:
            acc = "" if c["accuracy"] is None else f"{c['accuracy'] * 100:.1f}%"
            parts.append(f"<tr><td><a href='#c{c['index']}'>{e(c['name'])}</a></td><td>{c['count']}</td>"
                         f"<td>{acc}</td><td>{len(c['clusters'])}</td><td>{len(c['flags'])}</td></tr>")
        parts.append("</table>")
        for c in summary["classes"]:
            parts.append(f"<h2 id='c{c['index']}'>{e(c['name'])}</h2>")
            parts.append(f"<p>{c['count']} pictures. Mean heatmap (boxes: flagged regions):</p>"
                         f"{img(c['mean_heatmap'], 'mean heatmap')}")
            for f in c["flags"]:
                drop, control = f["probability_drop"], f["control_drop"]
                verdict = ("Blurring this region costs the class "
                           f"{drop * 100:.0f} points of probability on average over {f['tested']} pictures "
                           f"(blurring the mirror region: {control * 100:.0f}): the model relies on it."
                           if f["confirmed"] else
                           f"Blurring this region costs the class {drop * 100:.0f} points over {f['tested']} "
                           f"pictures (mirror region: {control * 100:.0f}): no real drop, probably not a shortcut."
                           if drop is not None else "Not tested.")
                where = ", ".join(f"{v:.2f}" for v in f["box"])
                parts.append(f"<div class='flag{'' if f['confirmed'] else ' weak'}'><b>{e(f['kind'])}</b>: the "
                             f"evidence sits in the box ({where}) in {f['share'] * 100:.0f}% of the class's pictures. "
                             f"{verdict}<div class='row'>{img(f.get('before'), 'before')}"
                             f"{img(f.get('after'), 'after blurring')}</div></div>")
            for k, cl in enumerate(c["clusters"], start=1):
                parts.append(f"<p>Cluster {k}: {cl['size']} pictures</p>{img(cl['exemplars'], f'cluster {k}')}")
        parts.append("</body></html>")
        text = "\n".join(parts)
        atomic_write(self.out / "report.html", lambda f: f.write(text.encode("utf-8", "backslashreplace")),
                     overwrite=True)
