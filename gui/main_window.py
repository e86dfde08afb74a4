"""The DenseLens window: wiring of the image list, the view, the panels, menus and the engine thread."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QLabel,
    QLayout,
    QMainWindow,
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
from gui.blocks_panel import BlocksPanel
from gui.dropping import expand_paths, local_paths
from gui.engine import Classified, Engine, Explained, ExplainRequest, MetricsRequest, ModelFailure, ModelInfo
from gui.exporting import ExportController
from gui.image_list import ImageList
from gui.image_view import ImageView
from gui.predictions_panel import PredictionsPanel
from gui.settings import Settings
from model.choices import COLORMAPS, IMAGENET_MODELS, METHOD_TITLES, METHODS, MODEL_TITLES

log = logging.getLogger("denselens.gui")


class MainWindow(QMainWindow):
    # requests to the engine thread (queued connections)
    requestLoad = Signal(str, str)
    requestClassify = Signal(object)
    requestExplain = Signal(object)
    requestMetrics = Signal(object)
    requestConfigure = Signal(int, str)
    requestDropBatch = Signal()
    # GUI-thread notifications (for whoever watches the window, tests included)
    modelChanged = Signal(object)  # ModelInfo
    modelLoadFailed = Signal(object)  # ModelFailure

    def __init__(self, settings: Settings | None = None, autoload: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("DenseLens")
        self.setAcceptDrops(True)
        self.setMinimumSize(900, 560)
        self.settings = settings or Settings()
        self.info: ModelInfo | None = None
        self.results: dict[str, Classified] = {}
        self.current_path: str | None = None
        self.current_class: int | None = None  # None: the top class
        self.current_layer = self.settings.layer()
        self.last: Explained | None = None
        self._request_id = 0  # explanations: only the newest is shown
        self._metrics_id = 0
        self._waiting: set[str] = set()  # paths sent for classification, not answered yet

        self._build_widgets()
        self._build_actions()
        self._restore()
        self._start_engine()
        self.exporter = ExportController(self)
        if autoload:
            QTimer.singleShot(0, lambda: self.load_model(self.settings.model()))

    # -- construction ----------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.images = ImageList()
        self.images.currentItemChanged.connect(lambda *_: self._on_current_changed())
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
        self.metrics_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        right = QWidget()
        col = QVBoxLayout(right)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)  # so the scroll area scrolls
        col.addWidget(self.predictions)
        col.addWidget(QLabel("<b>Dense blocks</b> (current class)"))
        self.all_taps = QCheckBox("Also transitions and norm5")
        self.all_taps.setToolTip("Show the transitions' and the final norm's heatmaps beside the dense blocks")
        self.all_taps.toggled.connect(lambda *_: self._on_all_taps())
        col.addWidget(self.all_taps)
        col.addWidget(self.blocks)
        col.addWidget(self.metrics_button)
        col.addWidget(self.metrics_label)
        col.addStretch(1)
        side = QScrollArea()  # on small screens the panel scrolls instead of squashing its tiles
        side.setWidget(right)
        side.setWidgetResizable(True)
        side.setFrameShape(QFrame.Shape.NoFrame)
        side.setMinimumWidth(2 * 144 + 40)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.images)
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([220, 640, 330])
        self.setCentralWidget(self.splitter)

        bar = self.statusBar()
        self.model_label = QLabel("Starting…")
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
        for m in METHODS:
            self.method.addItem(METHOD_TITLES[m], m)
        self.method.setToolTip("Explanation method (Score-CAM is slow: it runs one forward pass per channel)")
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
        self.preprocess.addItem("Whole image", "full")
        self.preprocess.addItem("Center crop 224", "center-crop")
        self.preprocess.setAccessibleName("Analysis region")
        self.preprocess.setToolTip("Whole image: everything, aspect kept. Center crop: torchvision's protocol "
                                   "(the analysed square is outlined).")
        for label, widget in (("Method", self.method), ("Layer", self.layer), ("Colormap", self.colormap),
                              ("Opacity", self.opacity), ("Region", self.preprocess)):
            tools.addWidget(QLabel(f" {label} "))
            tools.addWidget(widget)
        self.tools = tools

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
        self.export_action = self._action("&Export heatmap…", lambda: self.exporter.export_current(),
                                          QKeySequence.StandardKey.Save, "Save the current heatmap")
        file.addAction(self.export_action)
        file.addAction(self._action("Export &all…", lambda: self.exporter.export_all(), "Ctrl+Shift+S",
                                    "Save heatmaps for every listed image"))
        file.addAction(self._action("Export predictions as &CSV…", lambda: self.exporter.export_predictions("csv")))
        file.addAction(self._action("Export predictions as &JSON…",
                                    lambda: self.exporter.export_predictions("json")))
        file.addAction(self._action("&Copy overlay", self.copy_overlay, "Ctrl+Shift+C",
                                    "Copy the picture with its heatmap to the clipboard"))
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
        self.tools.addAction(self.overlay_action)

        self.model_menu = menu.addMenu("&Model")
        self.model_group = QActionGroup(self)
        for spec in (*IMAGENET_MODELS, "demo"):
            action = self._action(MODEL_TITLES[spec], lambda _c=False, s=spec: self.load_model(s))
            action.setCheckable(True)
            action.setData(spec)
            self.model_group.addAction(action)
            self.model_menu.addAction(action)
        self.model_menu.addSeparator()
        self.model_menu.addAction(self._action("&Load weights file…", self.load_weights_file, "Ctrl+L",
                                               "A DenseNet checkpoint: .pth, .pt or .safetensors"))
        self.recent_menu = self.model_menu.addMenu("&Recent models")
        self._fill_recent()

        self.device_menu = menu.addMenu("&Device")
        self.device_group = QActionGroup(self)
        self._fill_devices(["cpu"])

        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self._action("&About DenseLens", self.about))

        self.method.currentIndexChanged.connect(lambda *_: self._on_method())
        self.layer.currentIndexChanged.connect(lambda *_: self.choose_layer(self.layer.currentData() or ""))
        self.colormap.currentTextChanged.connect(self._on_style)
        self.opacity.valueChanged.connect(self._on_style)
        self.preprocess.currentIndexChanged.connect(lambda *_: self._on_preprocess())

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_models()
        for path in recent:
            self.recent_menu.addAction(self._action(path, lambda _c=False, p=path: self.load_model(p)))
        self.recent_menu.setEnabled(bool(recent))

    def _fill_devices(self, devices: list[str]) -> None:
        self.device_menu.clear()
        for action in self.device_group.actions():
            self.device_group.removeAction(action)
        chosen = self.settings.device()
        for device in ["auto", *devices]:
            title = {"auto": "&Auto (best available)", "cpu": "&CPU", "mps": "Apple &MPS"}.get(device, device.upper())
            action = self._action(title, lambda _c=False, d=device: self.set_device(d))
            action.setCheckable(True)
            action.setChecked(device == chosen)
            action.setData(device)
            self.device_group.addAction(action)
            self.device_menu.addAction(action)

    def _restore(self) -> None:
        s = self.settings
        # Read everything first: applying one value saves the others through its signal.
        method, colormap, opacity, mode, topk = s.method(), s.colormap(), s.opacity(), s.preprocess(), s.topk()
        self.all_taps.setChecked(s.all_taps())
        self._set_combo(self.method, method)
        self.colormap.setCurrentText(colormap)
        self.opacity.setValue(opacity)
        self._set_combo(self.preprocess, mode)
        self.predictions.topk.setValue(topk)
        self._on_style()
        geometry, state, split = s.state("geometry"), s.state("state"), s.state("splitter")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 800)
        if state is not None:
            self.restoreState(state)
        if split is not None:
            self.splitter.restoreState(split)

    @staticmethod
    def _set_combo(combo: QComboBox, data: str) -> None:
        i = combo.findData(data)
        if i >= 0:
            combo.setCurrentIndex(i)

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
        self.engine.modelLoading.connect(self._on_model_loading)
        self.engine.downloadProgress.connect(self._on_download)
        self.engine.modelReady.connect(self._on_model_ready)
        self.engine.modelFailed.connect(self._on_model_failed)
        self.engine.classified.connect(self._on_classified)
        self.engine.batchFinished.connect(self._on_batch_finished)
        self.engine.explained.connect(self._on_explained)
        self.engine.taskProgress.connect(self._on_task_progress)
        self.engine.metricsReady.connect(self._on_metrics)
        self.engine.problem.connect(lambda msg: self.show_error("Something went wrong", msg))
        self.thread.start()
        self.requestConfigure.emit(self.predictions.topk.value(), self.preprocess.currentData())

    # -- images -------------------------------------------------------------------
    def add_paths(self, paths: list[str]) -> tuple[int, int]:
        """Add files/folders; returns (images added, files skipped)."""
        images, skipped = expand_paths(paths)
        added = self.images.add_paths(images)
        if added and self.info is not None:
            self._classify(added)
        if added and self.images.currentRow() < 0:
            self.images.setCurrentRow(self.images.count() - len(added))
        parts = [f"Added {len(added)} image{'s' * (len(added) != 1)}"]
        if skipped:
            parts.append(f"skipped {len(skipped)} non-image file{'s' * (len(skipped) != 1)}")
        if len(images) > len(added):
            parts.append(f"{len(images) - len(added)} already listed")
        self.statusBar().showMessage(", ".join(parts), 8000)
        return len(added), len(skipped)

    def _classify(self, paths: list[str]) -> None:
        self.images.mark_busy(paths)
        self._waiting.update(paths)
        self.requestClassify.emit(list(paths))
        if len(self._waiting) > 1:
            self._show_progress("classify", self.images.count() - len(self._waiting), self.images.count())

    def remove_images(self, paths: list[str]) -> None:
        self.images.remove(paths)
        for p in paths:
            self.results.pop(p, None)
            self._waiting.discard(p)
        if self.current_path in paths:
            self._on_current_changed()

    def clear_images(self) -> None:
        self.requestDropBatch.emit()
        self.images.clear_all()
        self.results.clear()
        self._waiting.clear()
        self._on_current_changed()

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
        self.requestLoad.emit(spec, self.settings.device())

    def load_weights_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load DenseNet weights", self.settings.last_folder(),
                                              "DenseNet checkpoints (*.pth *.pt *.safetensors);;All files (*)")
        if path:
            self.load_model(path)

    def set_device(self, device: str) -> None:
        self.settings.set_device(device)
        if self.info is not None:
            self.load_model(self.info.spec)

    def _on_model_loading(self, spec: str) -> None:
        name = MODEL_TITLES.get(spec, Path(spec).name)
        self.model_label.setText(f"Loading {name}…")
        self.statusBar().showMessage(f"Loading {name}…")

    def _on_download(self, done: int, total: int) -> None:
        self._show_progress("download", done, total)
        mb = f"{done / 1e6:.1f}" + (f" of {total / 1e6:.1f}" if total > 0 else "")
        self.statusBar().showMessage(f"Downloading weights: {mb} MB")

    def _on_model_ready(self, info: ModelInfo) -> None:
        self.info = info
        self._hide_progress("download")
        self.settings.set_model(info.spec)
        if info.spec not in (*IMAGENET_MODELS, "demo"):
            self.settings.add_recent_model(info.spec)
            self._fill_recent()
        for action in self.model_group.actions():
            action.setChecked(action.data() == info.spec)
        self._fill_devices(info.devices)
        name = MODEL_TITLES.get(info.spec, Path(info.spec).name)
        self.model_label.setText(f"{name} · {info.device_name}")
        self.statusBar().showMessage(f"{name} ready on {info.device_name}", 5000)
        for warning in info.warnings:
            self.statusBar().showMessage(warning, 10000)
        self.predictions.set_labels(info.labels)
        self.layer.blockSignals(True)
        self.layer.clear()
        for tap in info.taps:
            self.layer.addItem(tap, tap)
        blocks = [t for t in info.taps if t.startswith("denseblock")]
        if self.current_layer not in info.taps:
            self.current_layer = blocks[-1]
        self._set_combo(self.layer, self.current_layer)
        self.layer.blockSignals(False)
        self.blocks.set_layers(self.panel_layers())
        self.blocks.select(self.current_layer)
        self.current_class = None
        if self.images.count():
            self._classify(self.images.paths())
        self.request_explanation()
        self.modelChanged.emit(info)

    def _on_model_failed(self, failure: ModelFailure) -> None:
        self._hide_progress("download")
        name = MODEL_TITLES.get(failure.spec, Path(failure.spec).name)
        message = failure.message
        if self.info is None and failure.weights_missing and failure.spec != "demo":
            # Offline first start: the bundled demo model keeps the app usable meanwhile.
            message += "\n\nUsing the demo model meanwhile."
            self.load_model("demo")
        self.model_label.setText("No model" if self.info is None else self.model_label.text())
        box = QMessageBox(QMessageBox.Icon.Warning, f"Cannot load {name}", message,
                          QMessageBox.StandardButton.NoButton, self)
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
    def _on_classified(self, result: Classified) -> None:
        self.results[result.path] = result
        self.images.set_result(result.path, result.predictions, result.error, result.thumbnail)
        self._waiting.discard(result.path)
        if self.progress.property("task") == "classify":
            self._show_progress("classify", self.images.count() - len(self._waiting), self.images.count())
        if result.error and result.path == self.current_path:
            self._show_image_error(result.error)

    def _on_batch_finished(self) -> None:
        self._waiting.clear()
        self._hide_progress("classify")
        errors = sum(1 for p in self.images.paths() if self.images.state(p) == "error")
        done = sum(1 for p in self.images.paths() if self.images.state(p) == "done")
        note = f"; {errors} could not be read (hover for why)" if errors else ""
        self.statusBar().showMessage(f"Classified {done} image{'s' * (done != 1)}{note}", 8000)

    def _on_current_changed(self) -> None:
        item = self.images.currentItem()
        path = item.data(Qt.ItemDataRole.UserRole) if item else None
        if path != self.current_path:
            self.current_class = None
        self.current_path = path
        self.metrics_label.clear()
        if path is None:
            self.last = None
            self.view.set_picture(None)
            self.predictions.set_message("Drop images here or use File ▸ Open.")
            self.blocks.show_maps(None, {}, {}, "")
            return
        self.request_explanation()

    def panel_layers(self) -> list[str]:
        """The taps the block panel shows: the dense blocks, plus transitions and norm5 on request."""
        if self.info is None:
            return []
        if self.all_taps.isChecked():
            return list(self.info.taps)
        return [t for t in self.info.taps if t.startswith("denseblock")]

    def _on_all_taps(self) -> None:
        self.settings.set_view(all_taps=self.all_taps.isChecked())
        self.blocks.set_layers(self.panel_layers())
        self.blocks.select(self.current_layer)
        self.request_explanation()

    def request_explanation(self) -> None:
        if self.info is None or self.current_path is None:
            return
        result = self.results.get(self.current_path)
        if result is not None and result.error:
            self._show_image_error(result.error)
            return
        self._request_id += 1
        layers = self.panel_layers()
        if self.current_layer not in layers:
            layers.append(self.current_layer)
        classes = None if self.current_class is None else [self.current_class]
        method = self.method.currentData()
        # A Score-CAM still running for an older request stops; the engine clears the flag
        # when it starts the next explanation.
        self.engine.cancel_explain.set()
        request = ExplainRequest(self._request_id, self.current_path, layers, classes, method,
                                 self.predictions.topk.value(), self.preprocess.currentData())
        self.requestExplain.emit(request)
        if method == "scorecam":
            self._show_progress("scorecam", 0, 0)
        self.statusBar().showMessage(f"Explaining {Path(self.current_path).name}…")

    def _on_explained(self, result: Explained) -> None:
        if result.request_id != self._request_id:
            return  # a newer request is on its way: stale results are dropped
        self._hide_progress("scorecam")
        if result.cancelled:
            self.statusBar().showMessage("Score-CAM cancelled", 5000)
            return
        if result.error:
            self._show_image_error(result.error)
            return
        self.last = result
        self.view.set_picture(result.picture)
        self.view.set_region(result.crop_box)
        self.predictions.set_predictions(result.predictions, self.shown_class())
        self._show_current_heat()
        self.statusBar().showMessage(f"{Path(result.path).name}: {self.current_layer}, "
                                     f"{METHOD_TITLES[self.method.currentData()]}", 5000)

    def shown_class(self) -> int | None:
        if self.current_class is not None:
            return self.current_class
        return self.last.predictions[0].index if self.last and self.last.predictions else None

    def _show_current_heat(self) -> None:
        if self.last is None:
            return
        cls = self.shown_class()
        view = self.last.heat.get((self.current_layer, cls))
        if view is None:
            self.request_explanation()
            return
        self.view.set_heat(view.index if view.status == "ok" else None)
        if view.status != "ok":
            self.statusBar().showMessage(view.message, 10000)
        heat = {layer: hv.index for (layer, c), hv in self.last.heat.items() if c == cls}
        messages = {layer: hv.message for (layer, c), hv in self.last.heat.items() if c == cls and hv.status != "ok"}
        label = view.label
        self.blocks.show_maps(self.last.picture, heat, messages,
                              f"{label} · {METHOD_TITLES[self.method.currentData()]}")
        self.blocks.select(self.current_layer)
        self.predictions.mark_selected(cls)

    def _show_image_error(self, error: str) -> None:
        self.view.set_picture(None)
        self.predictions.set_message(f"This image cannot be analysed:\n{error}")
        self.blocks.show_maps(None, {}, {}, "")

    def choose_class(self, class_index: int) -> None:
        self.current_class = class_index
        self.metrics_label.clear()
        if self.last is not None and (self.current_layer, class_index) in self.last.heat:
            self._show_current_heat()
        else:
            self.request_explanation()

    def choose_layer(self, layer: str) -> None:
        if not layer or self.info is None or layer not in self.info.taps:
            return
        self.current_layer = layer
        self._set_combo(self.layer, layer)
        self.settings.set_view(layer=layer)
        self.metrics_label.clear()
        if self.last is not None and (layer, self.shown_class()) in self.last.heat:
            self._show_current_heat()
        else:
            self.request_explanation()

    def _on_method(self) -> None:
        self.settings.set_view(method=self.method.currentData())
        self.request_explanation()

    def _on_style(self, *_args) -> None:
        colormap, opacity = self.colormap.currentText(), self.opacity.value() / 100
        self.view.set_colormap(colormap)
        self.view.set_opacity(opacity)
        self.blocks.set_style(colormap, opacity)
        self.settings.set_view(colormap=colormap, opacity=self.opacity.value())

    def _on_preprocess(self) -> None:
        mode = self.preprocess.currentData()
        self.settings.set_view(preprocess=mode)
        self.requestConfigure.emit(self.predictions.topk.value(), mode)
        if self.info is not None and self.images.count():
            self._classify(self.images.paths())
        self.request_explanation()

    def _on_topk(self, k: int) -> None:
        self.settings.set_view(topk=k)
        self.requestConfigure.emit(k, self.preprocess.currentData())
        self.request_explanation()

    def request_metrics(self) -> None:
        cls = self.shown_class()
        if self.info is None or self.current_path is None or cls is None:
            return
        self._metrics_id += 1
        self.metrics_label.setText("Measuring…")
        self.requestMetrics.emit(MetricsRequest(self._metrics_id, self.current_path, self.current_layer, cls,
                                                self.method.currentData(), self.preprocess.currentData()))

    def _on_metrics(self, request_id: int, figures) -> None:
        if request_id != self._metrics_id:
            return
        if isinstance(figures, str):
            self.metrics_label.setText(figures)
            return
        self.metrics_label.setText(
            f"Deletion AUC {figures['deletion_auc']:.3f} (lower is better) · insertion AUC "
            f"{figures['insertion_auc']:.3f} (higher is better)\nConfidence {figures['probability'] * 100:.1f}% → "
            f"{figures['probability_top20'] * 100:.1f}% with only the hottest 20% kept")

    # -- progress, errors, misc --------------------------------------------------------
    def _on_task_progress(self, task: str, done: int, total: int) -> None:
        self._show_progress(task, done, total)

    def _show_progress(self, task: str, done: int, total: int) -> None:
        self.progress.setProperty("task", task)
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(min(done, max(total, 0)))
        self.progress.setFormat({"scorecam": "Score-CAM %p%", "download": "Download %p%",
                                 "export": "Export %v/%m", "classify": "Classify %v/%m"}.get(task, "%p%"))
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)

    def _hide_progress(self, task: str) -> None:
        if self.progress.property("task") == task:
            self.progress.setVisible(False)
            self.cancel_button.setVisible(False)
            self.progress.setProperty("task", "")

    def cancel_work(self) -> None:
        task = self.progress.property("task")
        flags = {"scorecam": self.engine.cancel_explain, "download": self.engine.cancel_download,
                 "export": self.engine.cancel_export, "classify": self.engine.cancel_batch}
        flags.get(task, self.engine.cancel_batch).set()
        if task == "classify":
            self.requestDropBatch.emit()
        self._hide_progress(task)

    def copy_overlay(self) -> None:
        pixmap = self.view.grab_composite()
        if pixmap.isNull():
            self.statusBar().showMessage("Nothing to copy yet", 4000)
            return
        QGuiApplication.clipboard().setPixmap(pixmap)
        self.statusBar().showMessage("Overlay copied to the clipboard", 4000)

    def explore(self) -> None:
        if self.info is None:
            self.statusBar().showMessage("The model is still loading", 4000)
            return
        dialog = ArchitectureDialog(self.info.architecture, MODEL_TITLES.get(self.info.spec, self.info.spec), self)
        dialog.layerChosen.connect(self.choose_layer)
        dialog.open()
        self.architecture_dialog = dialog

    def about(self) -> None:
        import PySide6

        from model import __version__

        info = self.info
        lines = [f"<b>DenseLens {__version__}</b>", "See what a DenseNet sees.", "",
                 f"Qt {PySide6.QtCore.qVersion()}, PySide6 {PySide6.__version__}"]
        if info is not None:
            lines += [", ".join(f"{name} {version}" for name, version in info.versions.items()),
                      f"Device: {info.device_name}", f"Model: {MODEL_TITLES.get(info.spec, info.spec)}",
                      f"Weights: {info.weights_file}"]
        QMessageBox.about(self, "About DenseLens", "<br>".join(lines))

    def show_error(self, title: str, message: str) -> None:
        from gui.app import log_path

        log.error("%s: %s", title, message)
        box = QMessageBox(QMessageBox.Icon.Warning, title, f"{message}\n\nDetails are in the log: {log_path()}",
                          QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.show()
        self.error_box = box

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        s = self.settings
        s.set_state("geometry", self.saveGeometry())
        s.set_state("state", self.saveState())
        s.set_state("splitter", self.splitter.saveState())
        s.sync()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop the engine: cancel what can be cancelled, then wait for the thread to end."""
        if not self.thread.isRunning():
            return
        for flag in (self.engine.cancel_batch, self.engine.cancel_explain, self.engine.cancel_export,
                     self.engine.cancel_download):
            flag.set()
        self.requestDropBatch.emit()
        self.thread.quit()
        if not self.thread.wait(timeout_ms):
            log.error("engine thread did not stop within %d ms", timeout_ms)
