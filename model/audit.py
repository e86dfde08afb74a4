"""Auditing a folder: what does the model rely on, class by class?

``run_audit`` walks the folder (one sub-folder per class, or any pictures),
explains every picture in batches (``model.audit_scan``; streamed to disk by
``model.audit_store``, resumable), then per class computes the mean heatmap,
SpRAy clusters and shortcut flags (``model.audit_analysis``), tests every
flag by blurring its box (``model.audit_blur``) and writes ``audit.json``,
``heatmaps.npz``, the pictures and ``report.html`` (``model.audit_report``).
The per-picture step runs here or, with ``engine="ray"``, on a Ray cluster
(``model.audit_ray``); both produce the same records and the same report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from model.audit_analysis import analyse_class
from model.audit_blur import measure_flag
from model.audit_options import ENGINES
from model.audit_report import ReportWriter
from model.audit_scan import MAP_SIDE, Item, prepare_all, scan
from model.audit_store import AuditStore, write_heatmaps
from model.classifier import DenseNetClassifier
from model.datasets import DataError, check_folder
from model.errors import Cancelled
from model.explain import default_layer
from model.export import atomic_write
from model.images import collect_images

BATCH = 16
RUN_FILE = "run.json"  # what the records were made with, checked on --resume

Progress = Callable[[str, int, int], None]  # stage, done, total


@dataclass
class AuditConfig:
    folder: str
    out: str
    labels: str | None = None  # folders, predicted; None: folders when sub-folders are named after classes
    layer: str | None = None  # None: the deepest dense block
    method: str = "gradcam"
    engine: str = "local"
    ray_address: str | None = None
    resume: bool = False
    batch_size: int = BATCH


def audit_items(clf: DenseNetClassifier, folder: Path, labels: str | None) -> tuple[list[Item], str, list]:
    """The pictures to audit, the label mode used, and what was ignored."""
    if labels != "predicted":
        try:
            check = check_folder(folder, class_names=clf.labels, min_per_class=0, decode=False)
        except DataError:
            if labels == "folders":
                raise
            check = None
        if check is not None:
            index = {name: i for i, name in enumerate(clf.labels)}
            items = [Item(str(path), index[check.classes[label]]) for path, label in check.files]
            return sorted(items, key=lambda i: i.path), "folders", check.ignored
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    found = collect_images([folder])
    return [Item(str(p)) for p in sorted(found.images)], "predicted", found.problems


def _check_run(path: Path, run: dict, resume: bool) -> None:
    """Resume only what was started: the same model, layer, method and labels; record them for a new run."""
    if resume and path.is_file():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = None
        if before != run:
            raise DataError(f"{path.parent} holds an audit made with {before}; resume it with the same model, "
                            f"--layer, --method and --labels, or audit into a new folder")
        return
    text = json.dumps(run, ensure_ascii=True)
    atomic_write(path, lambda f: f.write(text.encode("ascii")), overwrite=True)


def _scan_local(clf: DenseNetClassifier, todo: list[Item], cfg: AuditConfig, layer: str, store: AuditStore,
                progress: Progress, cancelled: Callable[[], bool], done_before: int, total: int) -> None:
    """Batch after batch; the next batch is decoded (in threads) while the network runs on this one."""
    batches = [todo[start:start + cfg.batch_size] for start in range(0, len(todo), cfg.batch_size)]
    done = done_before
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-ahead") as ahead:
        upcoming = ahead.submit(prepare_all, clf, batches[0]) if batches else None
        for k, batch in enumerate(batches):
            if cancelled():
                upcoming.cancel()
                raise Cancelled(f"the audit was stopped after {done} of {total} pictures; --resume carries on")
            prepared = upcoming.result()
            if k + 1 < len(batches):
                upcoming = ahead.submit(prepare_all, clf, batches[k + 1])
            records, maps = scan(clf, batch, layer, cfg.method, cfg.batch_size, prepared)
            store.add(records, maps)
            done += len(records)
            progress("explaining", done, total)


def run_audit(clf: DenseNetClassifier, cfg: AuditConfig, progress: Progress | None = None,
              cancelled: Callable[[], bool] | None = None) -> dict:
    """Audit ``cfg.folder`` into ``cfg.out``; return what ``audit.json`` holds."""
    progress = progress or (lambda stage, done, total: None)
    cancelled = cancelled or (lambda: False)
    if cfg.engine not in ENGINES:
        raise DataError(f"unknown engine {cfg.engine!r}; choose from {', '.join(ENGINES)}")
    layer = cfg.layer or default_layer(clf.model.tap_names)
    if layer not in clf.model.tap_names:
        raise DataError(f"unknown layer {layer!r}; this model has {', '.join(clf.model.tap_names)}")
    folder, out = Path(cfg.folder), Path(cfg.out)
    items, label_mode, ignored = audit_items(clf, folder, cfg.labels)
    if not items:
        raise DataError(f"{folder}: no pictures to audit")
    out.mkdir(parents=True, exist_ok=True)
    _check_run(out / RUN_FILE, {"model": clf.title, "layer": layer, "method": cfg.method, "labels": label_mode},
               cfg.resume)
    store = AuditStore(out, resume=cfg.resume)
    done = store.done() if cfg.resume else set()
    todo = [item for item in items if item.path not in done]
    total = len(items)
    progress("explaining", total - len(todo), total)
    started = time.perf_counter()
    if cfg.engine == "ray":
        from model.audit_ray import scan_with_ray

        scan_with_ray(clf, todo, layer, cfg.method, cfg.batch_size, cfg.ray_address, store.add,
                      lambda n: progress("explaining", total - len(todo) + n, total), cancelled)
    else:
        _scan_local(clf, todo, cfg, layer, store, progress, cancelled, total - len(todo), total)
    scan_seconds = time.perf_counter() - started
    wanted = {item.path for item in items}
    records, maps = store.gather()
    keep = [i for i, r in enumerate(records) if r["path"] in wanted]  # a resumed folder may have lost pictures
    records, maps = [records[i] for i in keep], maps[keep]
    write_heatmaps(out / "heatmaps.npz", records, maps)
    errors = [{"path": r["path"], "error": r["error"]} for r in records if r.get("error")]
    key = "true" if label_mode == "folders" else "predicted"
    writer = ReportWriter(out)
    classes = []
    present = sorted({r[key] for r in records if not r.get("error") and r.get(key) is not None})
    for n, index in enumerate(present):
        if cancelled():
            raise Cancelled("the audit was stopped while analysing; --resume finishes it without explaining again")
        progress("analysing", n, len(present))
        members = [i for i, r in enumerate(records) if not r.get("error") and r.get(key) == index]
        audit = analyse_class(index, clf.labels[index], records, members, maps)
        examples = {}
        for k, flag in enumerate(audit.flags):
            example = measure_flag(clf, [records[i]["path"] for i in flag.members], flag, index, cancelled)
            if example is not None:
                examples[k] = example
        classes.append(writer.class_pictures(clf, audit, records, maps, examples))
    progress("analysing", len(present), len(present))
    explained = len(todo)
    summary = {
        "model": clf.title, "folder": str(folder), "layer": layer, "method": cfg.method, "labels": label_mode,
        "images": len(records) - len(errors), "map_side": MAP_SIDE, "classes": classes, "errors": errors,
        "ignored": [{"path": str(p), "reason": r} for p, r in ignored],
        "throughput": {"engine": cfg.engine, "pictures": explained, "seconds": round(scan_seconds, 3),
                       "pictures_per_second": round(explained / scan_seconds, 2) if scan_seconds > 0 else None},
    }
    text = json.dumps(summary, indent=2, ensure_ascii=True)
    atomic_write(out / "audit.json", lambda f: f.write(text.encode("ascii")), overwrite=True)
    writer.html(summary)
    return summary
