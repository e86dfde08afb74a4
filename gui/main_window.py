"""The DenseLens window: widgets bound to the session state, user actions forwarded to it and the engine.

What the window shows lives in ``gui.session.Session`` (Qt-free); the window
draws it (``subscribe``) and turns clicks into session changes and engine
requests.  The engine lives in its own thread: requests go there as queued
signals, and every answer comes back to a slot of this window (queued to the
GUI thread), never to a lambda that would run in the engine's thread.
"""

from __future__ import annotations

import html
import logging
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, QThread, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QLabel,
    QLayout,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from gui.architecture_dialog import ArchitectureDialog
from gui.audit_view import AuditWindow
from gui.blocks_panel import BlocksPanel
from gui.dropping import expand_paths, local_paths
from gui.engine import TILE, Engine
from gui.evaluation_view import EvaluationWindow
from gui.exporting import ExportController
from gui.image_list import ImageList
from gui.image_view import ImageView
from gui.logs import log_path
from gui.messages import Classified, Explained, MetricsResult, ModelFailure, ModelInfo
from gui.predictions_panel import UNFAMILIAR_TEXT, UNFAMILIAR_TIP, PredictionsPanel
from gui.session import Session, Task
from gui.settings import Settings
from gui.sources_panel import SourcesPanel
from gui.text import display_name, display_path, plain_tooltip, short_name
from gui.train_dialog import TrainDialog
from gui.training_view import TrainingWindow
from model.cam import METHODS
from model.render import COLORMAPS
from model.zoo import MODELS, PREPROCESS_MODES, model_title, preprocess_help, preprocess_title

log = logging.getLogger("denselens.gui")
PROGRESS_FORMATS = {"download": "Download %p%", "export": "Export %v/%m", "classify": "Classify %v/%m"}


class MainWindow(QMainWindow):
    # requests to the engine thread (queued connections)
    requestLoad = Signal(str, str)
    requestClassify = Signal(object)
    requestExplain = Signal(object)
    requestMetrics = Signal(object)
    requestConfigure = Signal(str)
    requestDropBatch = Signal()
    requestSources = Signal(object)
    # GUI-thread notifications (for whoever watches the window, tests included)
    modelChanged = Signal(object)  # ModelInfo
    modelLoadFailed = Signal(object)  # ModelFailure
    errorReported = Signal(str, str)  # title, message: safe to emit from any thread

    def __init__(self, settings: Settings | None = None, autoload: bool = True, model: str | None = None,
                 device: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("DenseLens")
        self.setAcceptDrops(True)
        self.setMinimumSize(760, 520)
        self.settings = s = settings or Settings()
        self.device = device or s.device()  # a command-line device is used, not saved
        self.session = Session(layer=s.layer(), method=s.method(), colormap=s.colormap(), opacity=s.opacity(),
                               region=s.preprocess(), topk=s.topk(), all_taps=s.all_taps())
        self.error_box: QMessageBox | None = None
        self.failure_box: QMessageBox | None = None
        self.about_box: QMessageBox | None = None
        self._refresh_pending = False
        self._shown_picture = None  # the array the view shows, to skip redrawing the same picture
        self._last_request: tuple | None = None  # what the explanation on its way was asked for
        self._shown_key: tuple | None = None  # (path, method, region) of the maps on screen
        self._drawn_class: int | None = None  # the class of the maps on screen
        self._cancelled: tuple | None = None  # the request whose maps the user cancelled, while nothing changed
        self._picture_status = ""  # the status line last shown about the picture on screen
        self._sources_asked: tuple | None = None  # what the split on its way was asked for
        self.train_dialog = None  # gui.train_dialog.TrainDialog while open
        self.training_view = None  # gui.training_view.TrainingWindow of the latest run
        self.evaluation_views: list = []  # gui.evaluation_view.EvaluationWindow, open or not
        self.audit_view: AuditWindow | None = None  # File ▸ Audit a folder…, made on first use

        self._build_widgets()
        self._build_actions()
        self._restore()
        self._bind()
        self._start_engine()
        self.exporter = ExportController(self, self.session, self.engine, self.settings)
        self.errorReported.connect(self.show_error)
        self.update_actions()
        if autoload:
            QTimer.singleShot(0, lambda: self.load_model(model or s.model()))

    # -- construction ----------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.images = ImageList()
        self.images.currentItemChanged.connect(self._on_current_item)
        self.images.removeRequested.connect(self.remove_images)
        self.view = ImageView()
        self.predictions = PredictionsPanel()
        self.predictions.classChosen.connect(self.choose_class)
        self.predictions.topkChanged.connect(self._on_topk)
        self.blocks = BlocksPanel()
        self.blocks.layerChosen.connect(self.choose_layer)
        self.metrics_button = QPushButton("Faithfulness…")
        self.metrics_button.setToolTip("Deletion/insertion AUC and confidence with only the hottest 20% kept: "
                                       "how much to trust this heatmap")
        self.metrics_button.clicked.connect(self.request_metrics)
        self.metrics_label = QLabel()
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setTextFormat(Qt.TextFormat.PlainText)
        self.metrics_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        right = QWidget()
        col = QVBoxLayout(right)
        col.setContentsMargins(0, 0, 8, 0)  # the buttons keep off the window's (or the scroll bar's) edge
        col.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)  # so the scroll area scrolls
        col.addWidget(self.predictions)
        col.addWidget(QLabel("<b>Dense blocks</b> (current class)"))
        self.all_taps = QCheckBox("Also transitions and norm5")
        self.all_taps.setToolTip("Show the transitions' and the final norm's heatmaps beside the dense blocks")
        col.addWidget(self.all_taps)
        col.addWidget(self.blocks)
        self.split_box = QCheckBox("Which layers carry the evidence")
        self.split_box.setToolTip("Split the dense block's map by source: the block's input and each dense layer's "
                                  "new features (a block's output is their concatenation)")
        self.split_box.toggled.connect(self._on_split)
        col.addWidget(self.split_box)
        self.sources_panel = SourcesPanel()
        self.sources_panel.sourceChosen.connect(self.choose_source)
        self.sources_panel.setVisible(False)
        col.addWidget(self.sources_panel)
        col.addWidget(self.metrics_button)
        col.addWidget(self.metrics_label)
        col.addStretch(1)
        self.side = side = QScrollArea()  # on small screens the panel scrolls instead of squashing its tiles
        side.setWidget(right)
        side.setWidgetResizable(True)
        side.setFrameShape(QFrame.Shape.NoFrame)
        # Two columns of tiles, their margins and a vertical scroll bar; never a horizontal one.
        side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side.setMinimumWidth(2 * (TILE + 12) + 30 + side.verticalScrollBar().sizeHint().width())
        self.splitter = QSplitter()
        self.splitter.addWidget(self.images)
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.images.setMinimumWidth(120)
        self.view.setMinimumWidth(240)
        self.splitter.setSizes([190, 640, 330])
        self.setCentralWidget(self.splitter)

        bar = self.statusBar()
        self.model_label = QLabel("Starting…")
        self.model_label.setTextFormat(Qt.TextFormat.PlainText)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_work)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.model_label)

        tools = QToolBar("View")
        tools.setObjectName("view-toolbar")
        self.addToolBar(tools)
        self.method = QComboBox()
        for m in METHODS.values():
            self.method.addItem(m.title, m.name)
        self.method.setToolTip("Explanation method (slow ones run one forward pass per channel: progress and Cancel)")
        self.method.setAccessibleName("Method")
        self.layer = QComboBox()
        self.layer.setToolTip("Which feature map the heatmap explains")
        self.layer.setAccessibleName("Layer")
        self.layer.setMinimumContentsLength(11)
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.colormap.setAccessibleName("Colormap")
        self.colormap.setToolTip("Colormap of the heatmap")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setMaximumWidth(140)
        self.opacity.setAccessibleName("Heatmap opacity")
        self.opacity.setToolTip("Heatmap opacity (hold Space over the image to peek at the original)")
        self.preprocess = QComboBox()
        for mode in PREPROCESS_MODES:
            self.preprocess.addItem(preprocess_title(mode, 224), mode)
        self.preprocess.setAccessibleName("Analysis region")
        display = QToolBar("Display")  # a second row when the window is too narrow for one
        display.setObjectName("display-toolbar")
        self.addToolBar(display)
        for bar, label, widget in ((tools, "Method", self.method), (tools, "Layer", self.layer),
                                   (tools, "Region", self.preprocess), (display, "Colormap", self.colormap),
                                   (display, "Opacity", self.opacity)):
            bar.addWidget(QLabel(f" {label} "))
            bar.addWidget(widget)
        self.tools, self.display_tools = tools, display
        self._toolbar_break = False

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        menu = self.menuBar()
        file = menu.addMenu("&File")
        file.addAction(self._action("&Open images…", self.open_images, QKeySequence.StandardKey.Open,
                                    "Add image files"))
        file.addAction(self._action("Open &folder…", self.open_folder, "Ctrl+Shift+O",
                                    "Add every image in a folder and its sub-folders"))
        file.addAction(self._action("&Paste image", self.paste, QKeySequence.StandardKey.Paste,
                                    "Add the image or files on the clipboard"))
        file.addSeparator()
        self.audit_action = self._action("A&udit a folder…", self.open_audit,
                                         tip="What the model relies on across a folder: per class the mean heatmap, "
                                             "clusters of similar heatmaps and shortcut flags, each tested")
        file.addAction(self.audit_action)
        file.addSeparator()
        self.export_action = self._action("&Export heatmap…", lambda: self.exporter.export_current(),
                                          QKeySequence.StandardKey.Save, "Save the current heatmap")
        file.addAction(self.export_action)
        self.export_all_action = self._action("Export &all…", lambda: self.exporter.export_all(), "Ctrl+Shift+S",
                                              "Save heatmaps for every listed image")
        self.export_csv_action = self._action("Export predictions as &CSV…",
                                              lambda: self.exporter.export_predictions("csv"))
        self.export_json_action = self._action("Export predictions as &JSON…",
                                               lambda: self.exporter.export_predictions("json"))
        self.copy_action = self._action("&Copy overlay", self.copy_overlay, "Ctrl+Shift+C",
                                        "Copy the picture with its heatmap to the clipboard")
        for action in (self.export_all_action, self.export_csv_action, self.export_json_action, self.copy_action):
            file.addAction(action)
        file.addSeparator()
        file.addAction(self._action("&Remove selected", lambda: self.remove_images(self.images.selected_paths())))
        file.addAction(self._action("C&lear list", self.clear_images))
        file.addSeparator()
        file.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))

        view = menu.addMenu("&View")
        self.overlay_action = self._action("Show &heatmap", self.view.set_overlay_visible, "H",
                                           "Show or hide the heatmap layer")
        self.overlay_action.setCheckable(True)
        self.overlay_action.setChecked(True)
        view.addAction(self.overlay_action)
        view.addAction(self._action("&Fit to window", self.view.fit, "Ctrl+0"))
        view.addAction(self._action("&Actual size (100%)", self.view.actual_size, "Ctrl+1"))
        view.addAction(self._action("Zoom &in", lambda: self.view.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn))
        view.addAction(self._action("Zoom &out", lambda: self.view.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut))
        view.addSeparator()
        view.addAction(self._action("&Explore DenseNet…", self.explore, "Ctrl+E",
                                    "See the loaded network's blocks, channels and connections"))
        self.display_tools.addAction(self.overlay_action)

        self.model_menu = menu.addMenu("&Model")
        self.model_group = QActionGroup(self)
        for entry in MODELS.values():
            action = self._action(entry.title, lambda _c=False, s=entry.name: self.load_model(s))
            action.setCheckable(True)
            action.setData(entry.name)
            self.model_group.addAction(action)
            self.model_menu.addAction(action)
        self.model_menu.addSeparator()
        self.model_menu.addAction(self._action("&Load weights file…", self.load_weights_file, "Ctrl+L",
                                               "A DenseNet checkpoint: .pth, .pt or .safetensors"))
        self.recent_menu = self.model_menu.addMenu("&Recent models")
        self._fill_recent()
        self.model_menu.addSeparator()
        self.train_action = self._action("&Train on a folder…", self.open_train_dialog,
                                         tip="Train a DenseNet on a folder with one sub-folder of pictures per class")
        self.model_menu.addAction(self.train_action)
        self.evaluate_action = self._action("&Evaluate on a folder…", self.evaluate_folder,
                                            tip="Accuracy, confusion matrix and heatmaps of the loaded model on a "
                                                "folder with one sub-folder per class")
        self.model_menu.addAction(self.evaluate_action)

        self.device_menu = menu.addMenu("&Device")
        self.device_group = QActionGroup(self)
        self._fill_devices(["cpu"])

        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self._action("&Keyboard shortcuts", self.show_shortcuts,
                                         QKeySequence.StandardKey.HelpContents))
        help_menu.addAction(self._action("Open &log folder", self.open_log_folder,
                                         tip="Show the folder holding denselens.log"))
        help_menu.addSeparator()
        help_menu.addAction(self._action("&About DenseLens", self.about))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_models()
        for path in recent:
            self.recent_menu.addAction(self._action(path.replace("&", "&&"),
                                                    lambda _c=False, p=path: self.load_model(p)))
        self.recent_menu.setEnabled(bool(recent))

    def _fill_devices(self, devices: list[str]) -> None:
        self.device_menu.clear()
        for action in self.device_group.actions():
            self.device_group.removeAction(action)
        for device in ["auto", *devices]:
            title = {"auto": "&Auto (best available)", "cpu": "&CPU", "mps": "Apple &MPS"}.get(device, device.upper())
            action = self._action(title, lambda _c=False, d=device: self.set_device(d))
            action.setCheckable(True)
            action.setChecked(device == self.device)
            action.setData(device)
            self.device_group.addAction(action)
            self.device_menu.addAction(action)

    def _restore(self) -> None:
        s = self.session
        self.all_taps.setChecked(s.all_taps)
        self._set_combo(self.method, s.method)
        self.colormap.setCurrentText(s.colormap)
        self.opacity.setValue(s.opacity)
        self._set_combo(self.preprocess, s.region)
        self.predictions.topk.setValue(s.topk)
        self._show_style()
        geometry, state, split = (self.settings.state(k) for k in ("geometry", "state", "splitter"))
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 800)
        if state is not None:
            self.restoreState(state)
        if split is not None:
            self.splitter.restoreState(split)

    @staticmethod
    def _set_combo(combo: QComboBox, data: str) -> None:
        i = combo.findData(data)
        if i >= 0 and i != combo.currentIndex():
            combo.setCurrentIndex(i)

    def _bind(self) -> None:
        """Widgets forward to the session; the session's changes redraw the widgets."""
        s = self.session
        self.method.currentIndexChanged.connect(self._on_method)
        self.layer.currentIndexChanged.connect(lambda *_: self.choose_layer(self.layer.currentData() or ""))
        self.colormap.currentTextChanged.connect(self._on_style)
        self.opacity.valueChanged.connect(self._on_style)
        self.preprocess.currentIndexChanged.connect(self._on_region)
        self.all_taps.toggled.connect(self._on_all_taps)
        s.subscribe("model", self._show_model)
        s.subscribe("loading", lambda _v: self._show_model_status())
        s.subscribe("explanation", lambda _v: self._schedule_refresh())
        s.subscribe("current_class", lambda _v: self._schedule_refresh())
        s.subscribe("layer", self._show_layer)
        s.subscribe("current_path", self._show_path)
        s.subscribe("colormap", lambda _v: self._show_style())
        s.subscribe("opacity", lambda _v: self._show_style())
        s.subscribe("tasks", lambda _v: self._show_task())
        s.subscribe("method", lambda method: self._set_combo(self.method, method))
        s.subscribe("metrics", self._show_metrics)
        s.subscribe("source", lambda _v: self._schedule_refresh())

    def _start_engine(self) -> None:
        self.thread = QThread(self)
        self.thread.setObjectName("DenseLens engine")
        self.engine = Engine()
        self.engine.moveToThread(self.thread)
        self.thread.finished.connect(self.engine.deleteLater)
        self.requestLoad.connect(self.engine.load_model)
        self.requestClassify.connect(self.engine.classify)
        self.requestExplain.connect(self.engine.explain)
        self.requestMetrics.connect(self.engine.metrics)
        self.requestConfigure.connect(self.engine.configure)
        self.requestDropBatch.connect(self.engine.drop_batch)
        # Every answer goes to a slot of this window: queued into the GUI thread.
        self.engine.modelLoading.connect(self._on_model_loading)
        self.engine.downloadProgress.connect(self._on_download)
        self.engine.modelReady.connect(self._on_model_ready)
        self.engine.modelFailed.connect(self._on_model_failed)
        self.engine.classified.connect(self._on_classified)
        self.engine.batchFinished.connect(self._on_batch_finished)
        self.engine.explained.connect(self._on_explained)
        self.engine.taskProgress.connect(self._on_task_progress)
        self.engine.metricsReady.connect(self._on_metrics)
        self.engine.problem.connect(self._on_problem)
        self.requestSources.connect(self.engine.sources)
        self.engine.sourcesReady.connect(self._on_sources)
        self.thread.start()
        self.requestConfigure.emit(self.session.region)

    # -- images -------------------------------------------------------------------
    def add_paths(self, paths: list[str]) -> tuple[int, int]:
        """Add files/folders; returns (images added, files skipped)."""
        images, skipped, problems = expand_paths(paths)
        added = self.session.add_images(images)
        self.images.add_paths(added)
        if added and self.session.model is not None:
            self._classify(added)
        if added and self.images.currentRow() < 0:
            self.images.setCurrentRow(self.images.count() - len(added))
        parts = [f"Added {len(added)} image{'s' * (len(added) != 1)}"]
        if skipped:
            parts.append(f"skipped {len(skipped)} non-image file{'s' * (len(skipped) != 1)}")
        if len(images) > len(added):
            parts.append(f"{len(images) - len(added)} already listed")
        if problems:
            parts.append(f"{len(problems)} could not be read ({short_name(problems[0][0])}: {problems[0][1]}"
                         + (", …)" if len(problems) > 1 else ")"))
            for path, reason in problems:
                log.warning("cannot read %s: %s", path, reason)
        self.statusBar().showMessage(", ".join(parts), 15000 if problems else 8000)
        return len(added), len(skipped)

    def _classify(self, paths: list[str]) -> None:
        self.images.mark_busy(paths)
        self.session.classifying(paths)
        self.requestClassify.emit(list(paths))

    def remove_images(self, paths: list[str]) -> None:
        self.images.remove(paths)
        self.session.remove_images(paths)

    def clear_images(self) -> None:
        self.requestDropBatch.emit()
        self.images.clear_all()
        self.session.clear_images()

    def open_images(self) -> None:
        from model.images import IMAGE_EXTENSIONS

        pattern = " ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", self.settings.last_folder(),
                                                f"Images ({pattern});;All files (*)")
        if files:
            self.settings.set_last_folder(str(Path(files[0]).parent))
            self.add_paths(files)

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", self.settings.last_folder())
        if folder:
            self.settings.set_last_folder(folder)
            self.add_paths([folder])

    def paste(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        paths = local_paths(mime)
        if paths:
            self.add_paths(paths)
            return
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.statusBar().showMessage("The clipboard holds no image", 5000)
            return
        folder = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.TempLocation) or
                      tempfile.gettempdir()) / "DenseLens-pasted"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"pasted-{time.strftime('%Y%m%d-%H%M%S')}-{self.images.count()}.png"
        if not image.save(str(path), "PNG"):
            self.show_error("Cannot paste", f"Could not save the pasted image to {folder}")
            return
        self.add_paths([str(path)])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if local_paths(event.mimeData()):
            event.acceptProposedAction()
            self._set_drop_highlight(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        self._set_drop_highlight(False)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self._set_drop_highlight(False)
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def _set_drop_highlight(self, on: bool) -> None:
        self.centralWidget().setStyleSheet("QSplitter { border: 3px dashed palette(highlight); }" if on else "")
        self.statusBar().showMessage("Drop images or folders to add them" if on else "", 0 if on else 1)

    # -- model --------------------------------------------------------------------
    def load_model(self, spec: str) -> None:
        self.requestLoad.emit(spec, self.device)
        self._show_model_menu()  # the menu keeps naming the model in use until the new one is ready

    def load_weights_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load DenseNet weights", self.settings.last_folder(),
                                              "DenseNet checkpoints (*.pth *.pt *.safetensors);;All files (*)")
        if path:
            self.load_model(path)
        else:
            self._show_model_menu()

    def set_device(self, device: str) -> None:
        self.device = device
        self.settings.set_device(device)
        if self.session.model is not None:
            self.load_model(self.session.model.spec)

    @Slot(str)
    def _on_model_loading(self, spec: str) -> None:
        self.session.model_loading(spec)

    @Slot(int, int)
    def _on_download(self, done: int, total: int) -> None:
        self.session.update_task("download", done, max(total, 0))
        mb = f"{done / 1e6:.1f}" + (f" of {total / 1e6:.1f}" if total > 0 else "")
        self.statusBar().showMessage(f"Downloading weights: {mb} MB")

    @Slot(object)
    def _on_model_ready(self, info: ModelInfo) -> None:
        self.session.model_ready(info)
        self._shown_key = None  # the maps and predictions on screen came from the model before
        self._cancelled = None  # a cancelled request was the model before's
        self.settings.set_model(info.spec)
        if info.spec not in MODELS:
            self.settings.add_recent_model(info.spec)
            self._fill_recent()
        self.statusBar().showMessage(f"{info.title} ready on {info.device_name}", 5000)
        for warning in info.warnings:
            self.statusBar().showMessage(warning, 10000)
        if self.session.images:
            self._classify(list(self.session.images))
        self._schedule_refresh()
        self.modelChanged.emit(info)

    def _show_model(self, info: ModelInfo | None) -> None:
        self._show_model_menu()
        self._show_model_status()
        if info is None:
            return
        self._fill_devices(info.devices)
        self.predictions.set_labels(info.labels)
        self.layer.blockSignals(True)
        self.layer.clear()
        for tap in info.taps:
            self.layer.addItem(tap, tap)
        self.layer.blockSignals(False)
        self._set_combo(self.layer, self.session.layer)
        for i, mode in enumerate(PREPROCESS_MODES):
            self.preprocess.setItemText(i, preprocess_title(mode, info.input_size))
        self.preprocess.setToolTip("\n".join(f"{preprocess_title(m, info.input_size)}: "
                                             f"{preprocess_help(m, info.input_size)}" for m in PREPROCESS_MODES))
        self.blocks.set_layers(self.session.panel_layers())
        self.blocks.select(self.session.layer)

    def _show_model_menu(self) -> None:
        """Check the model that produces the numbers on screen (a cancelled or failed choice unchecks)."""
        current = self.session.model.spec if self.session.model else None
        self.model_group.setExclusive(False)
        for action in self.model_group.actions():
            action.setChecked(action.data() == current)
        self.model_group.setExclusive(True)

    def _show_model_status(self) -> None:
        s = self.session
        if s.loading is not None:
            self.model_label.setText(f"Loading {model_title(s.loading)}…")
            self.statusBar().showMessage(f"Loading {model_title(s.loading)}…")
            return
        self.model_label.setText(f"{s.model.title} · {s.model.device_name}" if s.model else "No model")
        if self.statusBar().currentMessage().startswith("Loading "):
            self.statusBar().clearMessage()

    @Slot(object)
    def _on_model_failed(self, failure: ModelFailure) -> None:
        self.session.model_failed(failure)
        self._show_model_menu()
        name = model_title(failure.spec)
        message = failure.message
        if self.session.model is None and failure.weights_missing and failure.spec != "demo":
            # Offline first start: the bundled demo model keeps the app usable meanwhile.
            message += "\n\nUsing the demo model meanwhile."
            self.load_model("demo")
        box = QMessageBox(QMessageBox.Icon.Warning, f"Cannot load {name}", message,
                          QMessageBox.StandardButton.NoButton, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        retry = box.addButton("Retry", QMessageBox.ButtonRole.AcceptRole)
        choose = box.addButton("Load weights file…", QMessageBox.ButtonRole.ActionRole)
        demo = box.addButton("Use demo model", QMessageBox.ButtonRole.ActionRole) if failure.spec != "demo" else None
        box.addButton(QMessageBox.StandardButton.Close)

        def chosen(button) -> None:
            if button is retry:
                self.load_model(failure.spec)
            elif button is choose:
                self.load_weights_file()
            elif demo is not None and button is demo:
                self.load_model("demo")

        box.buttonClicked.connect(chosen)
        box.setModal(False)
        box.show()
        self.failure_box = box  # kept: a non-modal box must outlive this method
        self.modelLoadFailed.emit(failure)

    # -- classification and explanation --------------------------------------------------
    @Slot(object)
    def _on_classified(self, result: Classified) -> None:
        if not self.session.accept_classified(result):
            return
        self.images.set_result(result.path, result.predictions, result.error, result.thumbnail)
        if result.predictions and getattr(result.predictions[0], "unfamiliar", None):
            self._mark_unfamiliar(result.path, result.predictions[0])
        if result.error and result.path == self.session.current_path:
            self._show_image_error(result.error)
        self.update_actions()

    def _mark_unfamiliar(self, path: str, top) -> None:
        """Flag a row whose picture is unlike the training pictures (the predictions panel says why)."""
        item = self.images.item_for(path)
        if item is not None:
            item.setText(f"{item.text()} ⚑")
            item.setToolTip(plain_tooltip(f"{display_path(path)}\n{top.label}: {top.probability * 100:.1f}%\n\n"
                                          f"{UNFAMILIAR_TEXT}: {UNFAMILIAR_TIP}"))

    @Slot()
    def _on_batch_finished(self) -> None:
        self.session.batch_finished()
        done, errors = self.session.counts()
        note = f"; {errors} could not be read (hover for why)" if errors else ""
        self.statusBar().showMessage(f"Classified {done} image{'s' * (done != 1)}{note}", 8000)

    def _on_current_item(self, *_args) -> None:
        item = self.images.currentItem()
        self.session.select_image(self.images.path_of(item))

    def _say(self, text: str, timeout_ms: int = 0) -> None:
        """A status line about the picture on screen (it goes when another picture is chosen)."""
        self._picture_status = text
        self.statusBar().showMessage(text, timeout_ms)

    def _show_path(self, path: str | None) -> None:
        if self.statusBar().currentMessage() == self._picture_status:
            self.statusBar().clearMessage()  # it was about the picture before
        self.setWindowTitle(f"{display_name(path)} — DenseLens" if path else "DenseLens")
        if path is None:
            self._shown_picture = None
            self._shown_key = None
            self.view.set_busy(None)
            self.view.set_message(None)
            self.view.set_picture(None)
            self.update_actions()
            self.predictions.set_message("Drop images here or use File ▸ Open.")
            self.blocks.show_maps(None, {}, {}, "")
            return
        self._schedule_refresh()

    def _on_all_taps(self, checked: bool) -> None:
        self.session.all_taps = checked
        self.settings.set_view(all_taps=checked)
        self.blocks.set_layers(self.session.panel_layers())
        self.blocks.select(self.session.layer)
        self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        """Redraw or ask the engine once, after the current batch of state changes."""
        if not self._refresh_pending:
            self._refresh_pending = True
            QTimer.singleShot(0, self.refresh)

    def update_actions(self) -> None:
        """Enable what can apply now: nothing to export or measure before a picture is explained."""
        s = self.session
        shown = s.current_explanation() is not None and not self.view.is_busy()
        for widget in (self.export_action, self.copy_action, self.metrics_button):
            widget.setEnabled(shown)
        self.export_all_action.setEnabled(any(r.error is None for r in s.results.values()))  # listed pictures only
        self.export_csv_action.setEnabled(bool(s.results))
        self.export_json_action.setEnabled(bool(s.results))

    def refresh(self) -> None:
        """Draw the current picture's maps if the session holds them, else ask the engine for them."""
        self._refresh_pending = False
        s = self.session
        self.update_actions()
        if s.model is None or s.current_path is None:
            return
        result = s.results.get(s.current_path)
        error = result.error if result is not None else None
        ex = s.explanation
        if error is None and ex is not None and (ex.path, ex.method, ex.preprocess) == (s.current_path, s.method,
                                                                                      s.region):
            error = ex.error  # a failed explanation is shown until the picture, method or region changes
        if error:
            self._show_image_error(error)
            return
        if s.has_current_maps():
            self._draw()
            self._show_sources()
            return
        if self._cancelled is not None:
            if self._cancelled == self._request_key():
                return  # cancelled: the picture stays without maps until the user asks for something else
            self._cancelled = None
            self.view.set_message(None)
        if self._shown_key != (s.current_path, s.method, s.region):
            # What is on screen belongs to another picture, method or region: say so until the answer comes.
            self.view.set_busy(f"Analysing {display_name(s.current_path)}…")
            self.blocks.set_stale(True)
            shown_path, _, shown_region = self._shown_key or (None, None, None)
            if (shown_path, shown_region) != (s.current_path, s.region):
                self.predictions.set_message("Analysing…")  # another method keeps this picture's predictions
            self.update_actions()
        if s.pending.get("explain") is None or not self._pending_matches():
            self.request_explanation()

    def _pending_matches(self) -> bool:
        """Whether the explanation on its way is for what the session now shows."""
        return self._last_request is not None and self._last_request == self._request_key()

    def _request_key(self) -> tuple:
        s = self.session
        return (s.current_path, s.layer, s.current_class, s.method, s.region, s.topk, tuple(s.panel_layers()))

    def request_explanation(self) -> None:
        request = self.session.explain_request()
        if request is None:
            return
        self._last_request = self._request_key()
        # A slow method still running for an older request stops; the engine clears the flag
        # when it starts the next explanation.
        self.engine.cancel_explain.set()
        self.requestExplain.emit(request)
        self._say(f"Explaining {short_name(request.path)}…")

    @Slot(object)
    def _on_explained(self, result: Explained) -> None:
        if not self.session.accept_explained(result):
            return  # a newer request is on its way: stale results are dropped
        request, self._last_request = self._last_request, None
        s = self.session
        if result.cancelled:
            shown = s.explanation
            if shown is not None and (shown.path, shown.preprocess) == (s.current_path, s.region) and not shown.error:
                s.method = shown.method  # back to the method and class of the maps on screen
                if self._drawn_class is not None:
                    s.current_class = self._drawn_class
                self.view.set_busy(None)
                self.blocks.set_stale(False)
                self._say(f"{METHODS[result.method].title} cancelled", 5000)
            else:
                self._cancelled = request
                self._show_cancelled(result)
            return
        if not result.error:
            cls = s.shown_class()
            label = s.model.labels[cls] if s.model and cls is not None else ""
            self._say(f"{short_name(result.path)}: {label} · {s.layer} · {METHODS[result.method].title}", 5000)
        else:
            self._say(f"{short_name(result.path)} cannot be analysed", 5000)

    def _show_cancelled(self, result: Explained) -> None:
        """The picture whose maps were cancelled before any of its maps were drawn: it and its predictions, no map
        (never the picture on screen before under this one's name)."""
        title = METHODS[result.method].title
        self._shown_picture = result.picture
        self._shown_key = (result.path, result.method, result.preprocess)
        self._drawn_class = None
        self.view.set_busy(None)
        self.view.set_picture(result.picture)
        self.view.set_heat(None)
        self.view.set_region(result.crop_box)
        self.view.set_message(f"{title} cancelled: no map. Choose a class, block or method to explain "
                              f"{display_name(result.path)}.")
        self.predictions.set_predictions(result.predictions, None)
        self.blocks.show_maps(result.thumbnail, {}, {}, f"{title} cancelled: no maps")
        self._say(f"{title} cancelled", 5000)
        self.update_actions()

    def _draw(self) -> None:
        s = self.session
        ex = s.current_explanation()
        cls = s.shown_class()
        view = ex.heat[(s.layer, cls)]
        split = s.current_sources()
        if s.source is not None and split is not None and s.source < len(split.maps):
            view = split.maps[s.source]  # one source's part of the block's map
            self._say(f"Showing the part of {s.layer}'s map that {split.names[s.source]} "
                      f"carries ({split.channels[s.source][0]}-{split.channels[s.source][1]}); "
                      "choose it again for the whole map", 10000)
        if ex.picture is not self._shown_picture:
            self._shown_picture = ex.picture
            self.view.set_picture(ex.picture)
        self._shown_key = (ex.path, ex.method, ex.preprocess)
        self._drawn_class = cls
        self.view.set_busy(None)
        self.view.set_message(None)
        self.view.set_region(ex.crop_box)
        self.predictions.set_predictions(ex.predictions, cls)
        self.view.set_heat(view.index if view.status == "ok" else None)
        if view.status != "ok":
            self._say(view.message, 10000)
        panel = s.panel_layers()
        tiles = {layer: hv.index for (layer, c), hv in ex.tiles.items() if c == cls and layer in panel}
        messages = {layer: hv.message for (layer, c), hv in ex.tiles.items() if c == cls and hv.status != "ok"}
        self.blocks.show_maps(ex.thumbnail, tiles, messages, f"{view.label} · {METHODS[ex.method].title}")
        self.blocks.select(s.layer)
        self.update_actions()

    def _on_split(self, checked: bool) -> None:
        self.session.split_sources = checked
        self.session.source = None
        self.sources_panel.setVisible(checked)
        self._schedule_refresh()

    def _show_sources(self) -> None:
        """The split of the main view's map by source, asked for when the panel is open and it is not held."""
        s = self.session
        if not s.split_sources:
            return
        split = s.current_sources()
        if split is not None and not split.error:
            self.sources_panel.set_sources(split.layer, split.label, split.names, split.shares, split.channels)
            self.sources_panel.select(s.source)
            return
        if split is not None:
            self.sources_panel.clear(split.error)
        elif not s.can_split_sources():
            self.sources_panel.clear("Choose a dense block and a gradient method to see which of its layers carry "
                                     "the evidence.")
        else:
            if s.pending.get("sources") is None or self._sources_asked != s.sources_key():
                request = s.sources_request()
                if request is not None:
                    self._sources_asked = s.sources_key()
                    self.requestSources.emit(request)
            self.sources_panel.clear("Measuring each source's share…")

    @Slot(object)
    def _on_sources(self, result) -> None:
        if self.session.accept_sources(result):
            self._schedule_refresh()

    def choose_source(self, index: int) -> None:
        """Show one source's part in the main view; choosing it again goes back to the whole map."""
        s = self.session
        s.source = None if s.source == index else index
        if s.source is None:
            self.sources_panel.select(None)

    def _show_image_error(self, error: str) -> None:
        self._shown_picture = None
        self._shown_key = None
        self.view.set_busy(None)
        self.view.set_picture(None)
        self.view.set_message(f"{display_name(self.session.current_path)} cannot be analysed.")
        self.predictions.set_message(f"This image cannot be analysed:\n{display_path(error)}")
        self.blocks.show_maps(None, {}, {}, "")

    def choose_class(self, class_index: int) -> None:
        self.session.choose_class(class_index)

    def choose_layer(self, layer: str) -> None:
        if self.session.choose_layer(layer):
            self.settings.set_view(layer=layer)

    def _show_layer(self, layer: str) -> None:
        self._set_combo(self.layer, layer)
        self.blocks.select(layer)
        self._schedule_refresh()

    def _on_method(self, *_args) -> None:
        self.session.source = None
        self.session.method = self.method.currentData()
        self.settings.set_view(method=self.session.method)
        self._schedule_refresh()

    def _on_style(self, *_args) -> None:
        self.session.colormap = self.colormap.currentText()
        self.session.opacity = self.opacity.value()
        self.settings.set_view(colormap=self.session.colormap, opacity=self.session.opacity)

    def _show_style(self) -> None:
        """Colormap and opacity change only how cached maps are painted: no torch, no engine."""
        colormap, opacity = self.session.colormap, self.session.opacity / 100
        self.view.set_colormap(colormap)
        self.view.set_opacity(opacity)
        self.blocks.set_style(colormap, opacity)

    def _on_region(self, *_args) -> None:
        mode = self.preprocess.currentData()
        self.session.region = mode
        self.settings.set_view(preprocess=mode)
        self.requestConfigure.emit(mode)
        if self.session.model is not None and self.session.images:
            self._classify(list(self.session.images))
        self._schedule_refresh()

    def _on_topk(self, k: int) -> None:
        self.session.topk = k
        self.settings.set_view(topk=k)
        self.request_explanation()

    def request_metrics(self) -> None:
        request = self.session.metrics_request()
        if request is None:
            self.statusBar().showMessage("Nothing to measure yet: select an explained image", 5000)
            return
        self.requestMetrics.emit(request)

    @Slot(object)
    def _on_metrics(self, result: MetricsResult) -> None:
        self.session.accept_metrics(result)

    def _show_metrics(self, result: MetricsResult | None) -> None:
        if result is None:
            self.metrics_label.clear()
            return
        labels = self.session.model.labels if self.session.model else []
        name = labels[result.class_index] if result.class_index < len(labels) else f"class {result.class_index}"
        what = f"{result.layer} · {name}"
        if result.error:
            self.metrics_label.setText(f"{what}: {result.error}")
        elif result.figures is None:
            self.metrics_label.setText(f"Measuring {what}…")
        else:
            f = result.figures
            self.metrics_label.setText(
                f"{what}\nDeletion AUC {f['deletion_auc']:.3f} (lower is better) · insertion AUC "
                f"{f['insertion_auc']:.3f} (higher is better)\nConfidence {f['probability'] * 100:.1f}% → "
                f"{f['probability_top20'] * 100:.1f}% with only the hottest 20% kept")
        QTimer.singleShot(0, lambda: self.side.ensureWidgetVisible(self.metrics_label))  # after the relayout

    # -- training and evaluation --------------------------------------------------------
    def open_train_dialog(self):
        """Model ▸ Train on a folder…: the dialog (or the running training's view)."""
        if self.training_running():
            self.training_view.show()
            self.training_view.raise_()
            return None
        if self.train_dialog is not None:
            self.train_dialog.raise_()
            return self.train_dialog
        current = self.session.model.spec if self.session.model else None
        dialog = TrainDialog(self, current, device=self.device)
        dialog.accepted.connect(self._on_train_accepted)
        dialog.finished.connect(self._on_train_dialog_closed)
        dialog.open()
        self.train_dialog = dialog
        return dialog

    @Slot()
    def _on_train_accepted(self) -> None:
        if self.train_dialog is not None:
            self.start_training(self.train_dialog.config())

    @Slot(int)
    def _on_train_dialog_closed(self, _result: int) -> None:
        if self.train_dialog is not None:
            self.train_dialog.deleteLater()
        self.train_dialog = None

    def start_training(self, config: dict):
        """Open the live training view and start ``config`` (``model.training.TrainConfig``'s fields)."""
        if self.training_running():
            return self.training_view
        if self.training_view is not None:
            self.training_view.shutdown()
            self.training_view.deleteLater()
        view = TrainingWindow(config, self)
        view.modelReady.connect(self._on_trained)
        self.training_view = view
        view.show()
        view.start()
        self.statusBar().showMessage(f"Training {display_name(config['out'])}…", 5000)
        return view

    @Slot(object)
    def _on_trained(self, result) -> None:
        """A run's model: load it as the current one (it joins Recent models) and evaluate it."""
        checkpoint = result.summary["checkpoint"]
        self.load_model(checkpoint)
        files = result.validation_files or None
        folder = result.validation_folder
        what = (f"its {len(files)} validation pictures from {display_name(folder)}" if files else
                f"the pictures in {display_name(folder)}")
        self.open_evaluation(checkpoint, folder, files, what)

    def evaluate_folder(self) -> None:
        """Model ▸ Evaluate on a folder…: the loaded model on a folder with one sub-folder per class."""
        if self.session.model is None:
            self.statusBar().showMessage("The model is still loading", 4000)
            return
        folder = QFileDialog.getExistingDirectory(self, "Evaluate on a folder (one sub-folder per class)",
                                                  self.settings.last_folder())
        if folder:
            self.settings.set_last_folder(folder)
            self.open_evaluation(self.session.model.spec, folder)

    def open_evaluation(self, spec: str, folder: str, files: list[str] | None = None, what: str = ""):
        for old in [v for v in self.evaluation_views if not v.isVisible() and not v.running]:
            old.shutdown()
            old.deleteLater()
            self.evaluation_views.remove(old)
        view = EvaluationWindow(spec, self.device, folder, files, what, self)
        self.evaluation_views.append(view)
        view.show()
        return view

    # -- the folder audit ----------------------------------------------------------------
    def open_audit(self) -> AuditWindow | None:
        """File ▸ Audit a folder…: the audit view (a running audit's, or ready for the current model)."""
        view = self.audit_view
        if view is None or not view.run.running:
            if self.session.model is None:
                self.statusBar().showMessage("The model is still loading", 4000)
                return None
            if view is None:
                view = self.audit_view = AuditWindow(self, self.settings.last_folder())
                view.pictureChosen.connect(self.show_picture)
            view.set_model(self.session.model, self.device)
        view.show()
        view.raise_()
        view.activateWindow()
        return view

    def audit_running(self) -> bool:
        return self.audit_view is not None and self.audit_view.run.running

    @Slot(object, int, str, str, object)
    def show_picture(self, path: str, class_index: int = -1, layer: str = "", method: str = "",
                     model: str = "") -> bool:
        """Select ``path`` (listing it first if needed) and show ``class_index``'s heatmap at ``layer`` by
        ``method``; the class and layer only when ``model`` (if given) is the one loaded.  False if it cannot
        be listed."""
        images, _, problems = expand_paths([path])
        if not images:
            reason = problems[0][1] if problems else "not a picture"
            self.statusBar().showMessage(f"Cannot show {short_name(path)}: {reason}", 8000)
            return False
        key = images[0]
        if key not in self.session.images:
            self.add_paths([key])
        item = self.images.item_for(key)
        if item is None:
            return False
        self.images.setCurrentItem(item)  # selects the picture: its class goes back to the top one
        self.images.scrollToItem(item)
        s = self.session
        if model and (s.model is None or s.model.spec != model):
            self.statusBar().showMessage(f"{short_name(key)}: the audited model is no longer loaded; showing "
                                         "the current model's top class", 8000)
        else:
            if method in METHODS:
                self._set_combo(self.method, method)  # _on_method follows
            if layer:
                self.choose_layer(layer)
            if s.model is not None and 0 <= class_index < len(s.model.labels):
                self.choose_class(class_index)
        self.show()
        self.raise_()
        self.activateWindow()
        return True

    # -- progress, errors, misc --------------------------------------------------------
    @Slot(str, int, int)
    def _on_task_progress(self, task: str, done: int, total: int) -> None:
        if task in self.session.tasks or task == "export":
            self.session.update_task(task, done, total)

    def _show_task(self) -> None:
        task: Task | None = self.session.active_task()
        if task is None:
            self.progress.setVisible(False)
            self.cancel_button.setVisible(False)
            return
        self.progress.setRange(0, max(task.total, 0))
        self.progress.setValue(min(task.done, max(task.total, 0)))
        title = METHODS[self.session.method].title
        self.progress.setFormat(PROGRESS_FORMATS.get(task.name, f"{title} %p%"))
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)

    def cancel_work(self) -> None:
        task = self.session.active_task()
        if task is None:
            return
        flags = {"explain": self.engine.cancel_explain, "download": self.engine.cancel_download,
                 "export": self.engine.cancel_export, "classify": self.engine.cancel_batch}
        flags[task.name].set()
        self.statusBar().showMessage("Cancelling…")
        if task.name == "classify":
            self.requestDropBatch.emit()
        self.session.finish_task(task.name)

    def copy_overlay(self) -> None:
        pixmap = self.view.grab_composite()
        if pixmap.isNull():
            self.statusBar().showMessage("Nothing to copy yet", 4000)
            return
        QGuiApplication.clipboard().setPixmap(pixmap)
        self.statusBar().showMessage("Overlay copied to the clipboard", 4000)

    def explore(self) -> None:
        info = self.session.model
        if info is None:
            self.statusBar().showMessage("The model is still loading", 4000)
            return
        dialog = ArchitectureDialog(info.architecture, info.title, self)
        dialog.layerChosen.connect(self.choose_layer)
        dialog.open()
        self.architecture_dialog = dialog

    def about(self) -> None:
        import PySide6

        from model import __version__

        info = self.session.model
        lines = [f"<b>DenseLens {__version__}</b>", "See what a DenseNet sees.", "",
                 f"Qt {PySide6.QtCore.qVersion()}, PySide6 {PySide6.__version__}"]
        if info is not None:
            lines += [", ".join(f"{name} {version}" for name, version in info.versions.items()),
                      f"Device: {html.escape(info.device_name)}", f"Model: {html.escape(info.title)}",
                      f"Weights: {html.escape(info.weights_file)}"]
        box = QMessageBox(QMessageBox.Icon.Information, "About DenseLens", "<br>".join(lines),
                          QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.RichText)  # every value from a file is escaped above
        box.open()  # window-modal, without blocking the event loop
        self.about_box = box

    def show_shortcuts(self) -> None:
        rows = [(a.text().replace("&", ""), a.shortcut().toString(QKeySequence.SequenceFormat.NativeText))
                for menu in self.menuBar().findChildren(QMenu) for a in menu.actions()
                if not a.shortcut().isEmpty()]
        rows += [("Peek at the picture without the heatmap (hold)", "Space"), ("Zoom", "Mouse wheel"),
                 ("Pan", "Drag"), ("Remove the selected pictures", "Delete")]
        text = "\n".join(f"{keys:>16}   {what}" for what, keys in dict(rows).items())
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", text, QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        font = box.font()
        font.setFamily("monospace")
        box.setFont(font)
        box.open()
        self.shortcuts_box = box

    def open_log_folder(self) -> None:
        folder = log_path().parent
        folder.mkdir(parents=True, exist_ok=True)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.statusBar().showMessage(f"The log is in {folder}", 15000)

    @Slot(str)
    def _on_problem(self, message: str) -> None:
        self.show_error("Something went wrong", message)

    @Slot(str, str)
    def show_error(self, title: str, message: str) -> None:
        log.error("%s: %s", title, message)
        box = QMessageBox(QMessageBox.Icon.Warning, title, f"{message}\n\nDetails are in the log: {log_path()}",
                          QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setModal(False)
        box.show()
        self.error_box = box

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._arrange_toolbars()

    def _arrange_toolbars(self) -> None:
        """One row of tools when they fit, two when the window is narrow: never hidden behind a » button."""
        need = self.tools.sizeHint().width() + self.display_tools.sizeHint().width() + 16
        wrap = need > self.width()
        if wrap != self._toolbar_break:
            if wrap:
                self.insertToolBarBreak(self.display_tools)
            else:
                self.removeToolBarBreak(self.display_tools)
            self._toolbar_break = wrap

    def training_running(self) -> bool:
        view = self.training_view
        return view is not None and view.run.running

    def may_close(self) -> bool:
        """Whether the window may close now: while training or an audit runs, only if the user agrees to stop it."""
        if self.training_running() and not self.confirm_stop_training():
            return False
        return not self.audit_running() or self.confirm_stop_audit()

    def _confirm_quit(self, title: str, text: str, quit_label: str, keep_label: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, self)
        quit_button = box.addButton(quit_label, QMessageBox.ButtonRole.AcceptRole)
        box.addButton(keep_label, QMessageBox.ButtonRole.RejectRole)
        box.exec()
        return box.clickedButton() is quit_button

    def confirm_stop_audit(self) -> bool:
        """Ask whether to stop the audit and quit (tests replace this method)."""
        return self._confirm_quit("Stop the audit and quit?",
                                  "A folder is being audited. Quitting stops it; the pictures explained so far stay "
                                  "in its report folder and Resume carries on later.",
                                  "Stop the audit and quit", "Keep auditing")

    def confirm_stop_training(self) -> bool:
        """Ask whether to stop training and quit (tests replace this method)."""
        return self._confirm_quit("Stop training and quit?",
                                  "A model is training. Quitting stops it; the best epoch so far stays saved and "
                                  "training can be resumed later.", "Stop training and quit", "Keep training")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if not self.may_close():
            event.ignore()
            return
        s = self.settings
        s.set_state("geometry", self.saveGeometry())
        s.set_state("state", self.saveState())
        s.set_state("splitter", self.splitter.saveState())
        s.sync()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop training, evaluations and the engine: cancel what can be cancelled, then wait for the threads."""
        if self.train_dialog is not None:
            self.train_dialog.reject()
            self.train_dialog = None
        if self.training_view is not None:
            self.training_view.shutdown()
        for view in self.evaluation_views:
            view.shutdown()
        if self.audit_view is not None:
            self.audit_view.shutdown()
        if not self.thread.isRunning():
            return
        for flag in (self.engine.cancel_batch, self.engine.cancel_explain, self.engine.cancel_export,
                     self.engine.cancel_download):
            flag.set()
        self.requestDropBatch.emit()
        self.thread.quit()
        if not self.thread.wait(timeout_ms):
            log.error("engine thread did not stop within %d ms", timeout_ms)
