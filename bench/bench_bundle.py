"""The frozen bundle: size, biggest parts, and cold start to window against `python main.py`.

    xvfb-run -a .venv/bin/python bench/bench_bundle.py dist/DenseLens [--runs 5]

Build time is what `time make app` prints; this script measures an existing build.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_gui import ROOT, window_seconds  # noqa: E402


def size_of(path: Path) -> int:
    if path.is_symlink():
        return 0  # counted where it points
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    internal = args.bundle / "_internal"
    total = size_of(args.bundle)
    parts = sorted(((size_of(p), p.name) for p in internal.iterdir()), reverse=True)[:5]
    print(f"bundle {args.bundle}: {total / 2**30:.2f} GiB")
    for size, name in parts:
        print(f"  {name:<28} {size / 2**20:8.0f} MiB")
    home = Path(tempfile.mkdtemp())
    frozen, source = [], []
    for _ in range(args.runs):  # interleaved: the machine's noise hits both alike
        frozen.append(window_seconds([str(args.bundle / "DenseLens")], home))
        source.append(window_seconds([sys.executable, str(ROOT / "main.py")], home))
    f, s = statistics.median(frozen), statistics.median(source)
    print(f"start to window, median of {args.runs}: bundle {f:.2f} s, python main.py {s:.2f} s (ratio {f / s:.2f})")


if __name__ == "__main__":
    main()
