"""The live training view: curves per epoch, the epoch's progress and the time left, Stop and Resume.

It owns a ``gui.trainer.Trainer`` in its own thread and binds its widgets to a
``gui.session.TrainingRun`` (plain state, no Qt).  Stop keeps the best epoch
so far; Resume runs the same configuration again with ``resume=True`` (from
the last finished epoch).  A run that ends normally hands its model to the
window (``modelReady``); a stopped one does when *Use this model* is clicked.
Errors (a folder training cannot use, weights that cannot be downloaded, a
full disk) are shown here as messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.curves import CurvesWidget
from gui.messages import TrainRequest, TrainResult
from gui.session import TrainingRun, format_duration
from gui.text import ERROR_STYLE, display_name, display_path
from gui.trainer import Trainer, start_worker, stop_worker
from model.zoo import MODELS


def last_checkpoint(out: str) -> Path:
    """Where training keeps the state of its last finished epoch (what Resume continues from)."""
    path = Path(out)
    return path.with_name(path.stem + ".last.pth")


def start_title(init: str) -> str:
    if init == "scratch":
        return "scratch"
    return MODELS[init].title if init in MODELS else display_name(init)


class TrainingWindow(QDialog):
    """See the module docstring."""

    requestRun = Signal(object)  # TrainRequest, to the trainer's thread
    modelReady = Signal(object)  # TrainResult whose model the app should use now
    stateChanged = Signal(str)

    def __init__(self, config: dict, parent: QWidget | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window)
        self.setModal(False)
        self.run = run = TrainingRun(config, clock)
        self.result: TrainResult | None = None
        self.busy = False  # a run was sent and has not answered yet
        self.setWindowTitle(f"Training {display_name(config['out'])} — DenseLens")
        self.resize(820, 620)

        self.heading = QLabel()
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        self.heading.setWordWrap(True)
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.heading.setText(f"{display_name(config['data'])} · from {start_title(config.get('init', 'scratch'))}"
                             f" · {config.get('mode') or 'default mode'} · {run.epochs} epochs")
        self.heading.setToolTip(f"Pictures: {display_path(config['data'])}\nModel file: {display_path(config['out'])}")
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Training status")
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Progress of the current epoch")
        self.curves = CurvesWidget()
        self.best = QLabel()
        self.best.setTextFormat(Qt.TextFormat.PlainText)
        self.best.setWordWrap(True)
        self.message = QLabel()
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.hide()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setAccessibleName("Training log")
        self.log.setMaximumHeight(140)

        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; the best epoch so far stays saved")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue from the last finished epoch")
        self.resume_button.clicked.connect(self.resume)
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Load the best epoch's model and evaluate it on the validation pictures")
        self.use_button.clicked.connect(self.use_model)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.use_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.status)
        layout.addWidget(self.progress)
        layout.addWidget(self.curves, 1)
        layout.addWidget(self.best)
        layout.addWidget(self.message)
        layout.addWidget(self.log)
        layout.addLayout(buttons)

        self.trainer = Trainer()
        self.requestRun.connect(self.trainer.run)
        self.trainer.logged.connect(self._on_log)
        self.trainer.checking.connect(self._on_checking)
        self.trainer.stepped.connect(self._on_step)
        self.trainer.epochDone.connect(self._on_epoch)
        self.trainer.ended.connect(self._on_ended)
        self.thread = start_worker(self.trainer, "DenseLens training", self)
        self.ticker = QTimer(self)  # the time left moves on between steps
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self._show_status)

        for name in ("state", "progress", "checked", "message"):
            run.subscribe(name, lambda _v: self._show_status())
        run.subscribe("history", lambda _v: self._show_curves())
        run.subscribe("progress", lambda _v: self._show_curves())
        run.subscribe("state", lambda _v: self._show_curves())
        run.subscribe("state", self._on_state)
        self._on_state(run.state)  # the buttons for the first state too, not only from the first change
        self._show_status()
        self._show_curves()

    # -- actions ----------------------------------------------------------------------
    def start(self, resume: bool = False) -> None:
        """Run the configuration (again); ``resume`` continues from the last finished epoch."""
        if self.busy:
            return
        self.busy = True
        self.trainer.stop.clear()
        self.result = None
        self.run.restart()
        if resume:
            self._on_log("Resuming from the last finished epoch…")
        self.requestRun.emit(TrainRequest(dict(self.run.config), resume))

    def stop(self) -> None:
        """Stop after the current step: the best epoch so far stays saved."""
        if self.run.running:
            self.trainer.stop.set()
            self.run.stop_requested()

    def can_resume(self) -> bool:
        return last_checkpoint(self.run.config["out"]).is_file()

    def resume(self) -> None:
        """Continue the stopped run from its last finished epoch (or start again if none finished)."""
        if self.run.running:
            return
        resume = self.can_resume()
        if not resume:
            self.run.history = []
        self.start(resume=resume)

    def use_model(self) -> None:
        if self.result is not None and self.result.summary is not None:
            self.modelReady.emit(self.result)

    # -- answers from the trainer ---------------------------------------------------------
    @Slot(str)
    def _on_log(self, line: str) -> None:
        self.log.appendPlainText(display_path(line))

    @Slot(int, int)
    def _on_checking(self, done: int, total: int) -> None:
        self.run.checking(done, total)

    @Slot(int, int, int, float)
    def _on_step(self, epoch: int, step: int, steps: int, loss: float) -> None:
        if self.run.state in ("checking", "training", "stopping"):
            self.run.step(epoch, step, steps, loss)

    @Slot(object)
    def _on_epoch(self, row: dict) -> None:
        self.run.epoch_done(row)

    @Slot(object)
    def _on_ended(self, result: TrainResult) -> None:
        self.busy = False
        self.result = result
        if result.error is not None:
            self.run.failed(result.error)
        elif result.cancelled:
            self.run.message = "Stopped before the first epoch finished: nothing was saved."
            self.run.ended(None)
        else:
            self.run.ended(result.summary, (result.validation_folder, result.validation_files))
            if not result.summary.get("stopped"):
                self.modelReady.emit(result)

    # -- drawing ---------------------------------------------------------------------------
    def _on_state(self, state: str) -> None:
        running = self.run.running
        self.stop_button.setEnabled(state in ("checking", "training"))
        self.resume_button.setEnabled(not running and state != "finished")
        self.resume_button.setText("Resume" if running or self.can_resume() else "Start again")
        if state == "failed" and self.can_resume():
            self.resume_button.setText("Try again from the last epoch")
        self.use_button.setEnabled(not running and self.result is not None and self.result.summary is not None)
        self.use_button.setVisible(state == "stopped")
        if state == "training":
            self.ticker.start()
        else:
            self.ticker.stop()
        self.message.setVisible(bool(self.run.message))
        self.message.setText(display_path(self.run.message or ""))
        self.stateChanged.emit(state)

    def _show_status(self) -> None:
        run = self.run
        epoch, step, steps, loss = run.progress
        state = run.state
        if state == "checking":
            done, total = run.checked
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat("Checking pictures %v/%m" if total else "Preparing…")
            self.status.setText(f"Checking the pictures… {done} of {total}" if total else
                                f"Preparing: loading {start_title(run.config.get('init', 'scratch'))}…")
        elif state in ("training", "stopping"):
            self.progress.setRange(0, max(steps, 1))
            self.progress.setValue(step)
            self.progress.setFormat(f"Epoch {epoch}: step %v/%m")
            left = run.time_left()
            parts = [f"Epoch {epoch} of {run.epochs}", f"step {step} of {steps}"]
            if loss is not None:
                parts.append(f"training loss {loss:.3f}")
            if state == "stopping":
                parts.append("stopping after this step…")
            elif left is not None:
                parts.append(f"{format_duration(left)} left")
            else:
                parts.append("estimating the time left…")
            self.status.setText(" · ".join(parts))
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if state == "finished" else 0)
            self.progress.setFormat({"finished": "Finished", "stopped": "Stopped", "failed": "Failed"}[state])
            self.status.setText(self._ended_text())
        self.message.setVisible(bool(run.message))
        self.message.setText(display_path(run.message or ""))

    def _ended_text(self) -> str:
        run = self.run
        out = display_path(run.config["out"])
        best = run.best()
        if run.state == "failed":
            return "Training failed." + (" Resume continues from the last finished epoch." if self.can_resume() else "")
        if run.state == "stopped" and best is None:
            return "Stopped." + (" Resume continues from the last finished epoch." if self.can_resume() else "")
        summary = f"best epoch {best['epoch']}, validation accuracy {best['val_accuracy'] * 100:.1f}%"
        if run.state == "stopped":
            return (f"Stopped after epoch {run.history[-1]['epoch']} of {run.epochs}: {summary}, saved as {out}. "
                    "Resume continues; Use this model loads it.")
        return f"Finished: {summary}. Saved as {out}; it is now the current model."

    def _show_curves(self) -> None:
        run = self.run
        epoch, step, steps, loss = run.progress
        live = None
        last = run.history[-1]["epoch"] if run.history else 0
        if run.state in ("training", "stopping") and steps and loss is not None and epoch > last:
            live = (epoch - 1 + step / steps, loss)
        best = run.best()
        self.curves.set_data(run.history, run.epochs, live, best["epoch"] if best else None)
        self.best.setText(f"{'Best so far' if run.running else 'Best'}: epoch {best['epoch']}, validation accuracy "
                          f"{best['val_accuracy'] * 100:.1f}%, validation loss {best['val_loss']:.3f}"
                          if best else "")

    # -- closing ---------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing hides a running training (Model ▸ Train on a folder… shows it again); quitting stops it."""
        if not self.run.running:
            self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = 120000) -> bool:
        """Stop training (the best epoch stays saved) and wait for the thread to end."""
        self.stop()
        self.ticker.stop()
        return stop_worker(self.thread, timeout_ms)
