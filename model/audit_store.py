"""Streaming the audit's per-picture results to disk: memory stays flat with the folder's size.

``DIR/records.jsonl`` gets one JSON line per picture and ``DIR/parts/NNNNNN.npy``
the batch's small maps (float16), both written as each batch finishes; a
record names its part and row; JSON keeps the undecodable bytes of non-UTF-8 names as
``\\udcXX`` escapes, read back exactly.  ``--resume`` reads the records back and skips
their pictures.  A line cut short by a crash is ignored (that picture is
simply done again).  ``finish`` gathers everything into ``DIR/heatmaps.npz``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from model.audit_scan import MAP_SIDE
from model.export import atomic_write

RECORDS = "records.jsonl"
PARTS = "parts"


class AuditStore:
    """Appends batches of records and maps under ``folder``; reads them back in order."""

    def __init__(self, folder: Path, resume: bool = False) -> None:
        self.folder = folder
        self.records_path = folder / RECORDS
        (folder / PARTS).mkdir(parents=True, exist_ok=True)
        if not resume:
            self.records_path.unlink(missing_ok=True)
            for part in (folder / PARTS).glob("*.npy"):
                part.unlink()
        self.next_part = 1 + max((int(p.stem) for p in (folder / PARTS).glob("*.npy") if p.stem.isdigit()),
                                 default=-1)

    def done(self) -> set[str]:
        """Paths already audited (resume)."""
        return {r["path"] for r in self.records()}

    def add(self, records: list[dict], maps: np.ndarray) -> None:
        part = self.next_part
        self.next_part += 1
        buffer = io.BytesIO()
        np.save(buffer, maps.astype(np.float16))
        atomic_write(self.folder / PARTS / f"{part:06d}.npy", lambda f: f.write(buffer.getvalue()), overwrite=True)
        lines = [json.dumps({**r, "part": part, "row": i}, ensure_ascii=True)
                 for i, r in enumerate(records)]
        with open(self.records_path, "a", encoding="ascii") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> Iterator[dict]:
        if not self.records_path.is_file():
            return
        with open(self.records_path, encoding="ascii", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a crash
                    continue
                if (self.folder / PARTS / f"{record['part']:06d}.npy").is_file():
                    yield record

    def gather(self) -> tuple[list[dict], np.ndarray]:
        """Every record (the last one for a picture done twice) and its map, sorted by path."""
        latest: dict[str, dict] = {}
        for record in self.records():
            latest[record["path"]] = record
        records = sorted(latest.values(), key=lambda r: r["path"])
        maps = np.zeros((len(records), MAP_SIDE, MAP_SIDE), np.float16)
        parts: dict[int, np.ndarray] = {}
        for i, r in enumerate(records):
            if r["part"] not in parts:
                parts.clear()  # one part in memory at a time (records of a part are mostly adjacent)
                parts[r["part"]] = np.load(self.folder / PARTS / f"{r['part']:06d}.npy")
            maps[i] = parts[r["part"]][r["row"]]
        return records, maps


def write_heatmaps(path: Path, records: list[dict], maps: np.ndarray) -> None:
    """``heatmaps.npz``: the maps and the per-picture figures, row for row."""
    def column(key: str, default: float = np.nan) -> np.ndarray:
        return np.array([r.get(key, default) if r.get(key) is not None else default for r in records], np.float32)

    arrays = {
        "paths": np.array([r["path"] for r in records], dtype=str),  # non-UTF-8 bytes stay as \udcXX
        "maps": maps.astype(np.float16),
        "true": column("true", -1).astype(np.int32),
        "predicted": column("predicted", -1).astype(np.int32),
        "target": column("target", -1).astype(np.int32),
        "probability": column("probability"),
        "target_probability": column("target_probability"),
        "peak": np.array([r.get("peak") or [np.nan, np.nan] for r in records], np.float32).reshape(-1, 2),
        "border": column("border"),
        "entropy": column("entropy"),
    }

    def write(f) -> None:
        np.savez_compressed(f, **arrays)

    atomic_write(path, write, overwrite=True)
