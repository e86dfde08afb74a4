"""The audit's per-picture step on a Ray cluster: Ray Data ``map_batches`` over actors that each hold the model.

Ray is optional (``pip install 'ray[data]'``): the app and its bundle never
import it.  Without an address a local Ray instance is started for the run
and stopped after it; with one (``ray://host:10001`` or ``auto``) the
cluster's workers load the model from the same file or registry name and
read the pictures from the same paths, so both must be on storage every
node sees.  Actors run ``model.audit_scan.scan``: the records are the ones
the local engine makes.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from model.audit_scan import Item, scan
from model.classifier import DenseNetClassifier
from model.datasets import DataError
from model.errors import Cancelled

RAY_MISSING = "the Ray engine needs Ray Data, which is not installed: pip install 'ray[data]'"
LOCAL_CPUS = 2


class EngineUnavailable(DataError):
    """The requested engine cannot run here; the message says what to install."""


class _Scanner:
    """A Ray actor: loads the model once, then scans batches of pictures."""

    def __init__(self, spec: str, device: str, layer: str, method: str, batch_size: int) -> None:
        self.clf = DenseNetClassifier.load(spec, device=device, allow_download=False)
        self.layer, self.method, self.batch_size = layer, method, batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [Item(str(p), None if int(t) < 0 else int(t)) for p, t in zip(batch["path"], batch["true"])]
        records, maps = scan(self.clf, items, self.layer, self.method, self.batch_size)
        return {"record": np.array([json.dumps(r) for r in records]), "map": maps}


def model_source(clf: DenseNetClassifier) -> str:
    """What a worker loads: the weights file, else the registry name."""
    source = clf.weights_file or clf.spec
    if not source:
        raise DataError("the Ray engine needs a model loaded from a file or by name, not one built in memory")
    return source


def scan_with_ray(clf: DenseNetClassifier, todo: Sequence[Item], layer: str, method: str, batch_size: int,
                  address: str | None, sink: Callable[[list[dict], np.ndarray], None],
                  progress: Callable[[int], None], cancelled: Callable[[], bool]) -> None:
    """Scan ``todo`` on Ray, handing each finished batch to ``sink`` (in the driver, in order of completion)."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data needs pandas and pyarrow: fail here, not in a worker
    except ImportError:
        raise EngineUnavailable(RAY_MISSING) from None
    if not todo:
        return
    source = model_source(clf)
    gpu = clf.device.type == "cuda"
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=None if address else LOCAL_CPUS, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        with warnings.catch_warnings():
            # Ray Data's own DataContext() sets its deprecated fields to their defaults and warns about each
            # (DeprecationWarning: `use_push_based_shuffle`, `use_polars` ... is deprecated): nothing we set.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data\.context")
            ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ds = ray.data.from_items([{"path": item.path, "true": -1 if item.true is None else item.true}
                                  for item in todo])
        scanned = ds.map_batches(_Scanner, fn_constructor_args=(source, "cuda" if gpu else "cpu", layer, method,
                                                                batch_size),
                                 batch_size=batch_size, batch_format="numpy",
                                 compute=ray.data.ActorPoolStrategy(size=max(1, cpus // 2)),
                                 num_gpus=1 if gpu else 0, num_cpus=min(2, cpus))
        done = 0
        for batch in scanned.iter_batches(batch_size=None, batch_format="numpy"):
            records = [json.loads(text) for text in batch["record"]]
            sink(records, np.asarray(batch["map"]))
            done += len(records)
            progress(done)
            if cancelled():
                raise Cancelled(f"the audit was stopped after {done} pictures; --resume carries on")
    finally:
        if started_here:
            ray.shutdown()
