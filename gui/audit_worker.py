"""The folder audit's worker: loads its own copy of the model and runs ``model.audit.run_audit`` in its thread.

Like ``gui.trainer``'s workers: the view sends an ``AuditRequest`` as a queued
signal, progress and the ``AuditResult`` come back as signals connected to
slots of the view (queued into the GUI thread), and torch is imported only
here, inside the slot.  ``cancel`` (set from the GUI thread) stops the audit
between two batches; what was explained stays on disk and ``resume`` carries
on.  Failures (a folder the audit cannot use, an output folder that cannot be
written, a full disk) arrive as messages in the result, never as exceptions.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from gui.messages import AuditRequest, AuditResult
from gui.trainer import Throttle, unexpected


def os_problem(error: OSError, out: str) -> str:
    """A full disk or an output folder that cannot be written, said for a person."""
    from model.images import os_reason

    where = Path(error.filename) if error.filename else None
    reason = os_reason(error)
    if where is None or where == Path(out) or Path(out) in where.parents:
        return f"Cannot write the audit into {out}: {reason}."
    return f"{where}: {reason}."


class Auditor(QObject):
    """Runs one audit at a time; see the module docstring."""

    progress = Signal(str, int, int)  # stage ("loading", "explaining", "analysing"), done, total
    ended = Signal(object)  # AuditResult

    def __init__(self) -> None:
        super().__init__()
        self.cancel = threading.Event()  # set from the GUI thread; cleared by the view before each run

    @Slot(object)
    def run(self, request: AuditRequest) -> None:
        from model.errors import Cancelled, DenseLensError

        result = AuditResult(request.config["out"])
        throttle = Throttle()
        last = ["loading", 0, 0]

        def progress(stage: str, done: int, total: int) -> None:
            new_stage = stage != last[0]
            last[:] = [stage, done, total]
            if throttle(new_stage or done >= total):
                self.progress.emit(stage, done, total)

        try:
            self.progress.emit("loading", 0, 0)
            from model.audit import AuditConfig, run_audit
            from model.classifier import DenseNetClassifier

            clf = DenseNetClassifier.load(request.spec, device=request.device or "auto", allow_download=False)
            if self.cancel.is_set():
                raise Cancelled("the audit was stopped before it began")
            result.summary = run_audit(clf, AuditConfig(**request.config), progress, self.cancel.is_set)
        except Cancelled:
            result.cancelled = True
        except DenseLensError as e:  # a folder it cannot use, an unknown layer, a full disk (ExportError), ...
            result.error = str(e)
        except OSError as e:  # the output folder under a file, no space left for the records, ...
            result.error = os_problem(e, result.out)
        except Exception as e:  # noqa: BLE001 - the view must get an answer, never a traceback
            result.error = unexpected("Auditing the folder", e)
        result.stage, result.done, result.total = last
        self.ended.emit(result)
