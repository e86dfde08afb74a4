"""torchvision's DenseNet-121 forward timed in a process of its own, as a user's script runs it.

DenseLens tunes glibc's allocator for the whole process when it makes a classifier
(``model.allocator``), so a torchvision forward timed in the same process runs faster than in a
script of its own (4-14% in separate runs here).  ``SeparateTorchvision`` keeps that reference
apart: a child process that imports torch and torchvision only, with the same fixed-seed weights,
times its forward passes when asked, so that a benchmark can interleave them with its own calls.

    with SeparateTorchvision() as reference:
        seconds = reference.forward(threads=2)
"""

from __future__ import annotations

import subprocess
import sys
import time

PAUSE = 0.02  # seconds


class SeparateTorchvision:
    """A child process holding torchvision's DenseNet-121 (seed 0); ``forward`` times one pass there."""

    def __enter__(self) -> SeparateTorchvision:
        self._child = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True)
        return self

    def forward(self, threads: int) -> float:
        """Seconds of one forward pass (224x224, batch 1) with ``threads`` torch threads, timed in the child.

        Each side's OpenMP threads spin a little after their work before they sleep: a pause before and
        after the call keeps the two processes from timing each other's spinning.
        """
        time.sleep(PAUSE)
        self._child.stdin.write(f"{threads}\n")
        self._child.stdin.flush()
        reply = self._child.stdout.readline()
        if not reply:
            raise RuntimeError(f"the torchvision process ended (exit status {self._child.wait()})")
        time.sleep(PAUSE)
        return float(reply)

    def __exit__(self, *exc) -> None:
        self._child.stdin.close()
        self._child.wait(timeout=60)


def _serve() -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.densenet121().eval()
    x = torch.randn(1, 3, 224, 224)
    for line in sys.stdin:
        if int(line) != torch.get_num_threads():
            torch.set_num_threads(int(line))
        with torch.inference_mode():
            started = time.perf_counter()
            net(x)
            elapsed = time.perf_counter() - started
        print(repr(elapsed), flush=True)


if __name__ == "__main__":
    _serve()
