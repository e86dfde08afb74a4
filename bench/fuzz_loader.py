"""Longer fuzzing of the image loader and the classify path than `make test` runs.

    .venv/bin/python bench/fuzz_loader.py [--examples 5000]

Same properties as tests/test_hostile_inputs.py (random bytes, mutated PNG/JPEG/GIF/BMP/WebP/TIFF): every
input gives predictions or an ImageLoadError naming the file, nothing else.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from model.classifier import DenseNetClassifier  # noqa: E402
from model.zoo import Preprocessing
from tests.conftest import make_tiny  # noqa: E402
from tests.test_hostile_inputs import _load_or_refuse, mutated  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    args = parser.parse_args()
    clf = DenseNetClassifier(make_tiny(), list("abcd"), "cpu", preprocessing=Preprocessing(input_size=48))
    folder = Path(tempfile.mkdtemp())
    t0 = time.time()

    @settings(max_examples=args.examples, deadline=None, database=None)
    @given(data=st.binary(max_size=4096), suffix=st.sampled_from([".png", ".jpg", ".gif", ".tif", ".bin"]))
    def random_bytes(data, suffix):
        _load_or_refuse(clf, folder, data, suffix)

    @settings(max_examples=args.examples, deadline=None, database=None)
    @given(data=mutated())
    def mutated_images(data):
        _load_or_refuse(clf, folder, data, ".img")

    random_bytes()
    mutated_images()
    print(f"{2 * args.examples} inputs, no crash, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
