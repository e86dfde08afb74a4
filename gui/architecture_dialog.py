""""Explore DenseNet": the loaded network's stages, and for one dense block its connectivity and feature reuse.

Left: every stage with its channels, feature map, layers and parameters (``StageOverview``).  Right, for
the chosen dense block: its connections drawn (``ConnectivityView``) with its parameters next to a plain
CNN of the same widths, and the weight-based feature-reuse grid (``FeatureReuseView``), side by side when
the window is wide and as tabs when it is not.  Clicking a dense block, a transition or norm5 emits
``layerChosen`` (the main window shows that layer's heatmap) and shows the block it belongs to.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.connectivity_view import ConnectivityView
from gui.reuse_view import SCALES, FeatureReuseView, reuse_summary
from gui.stage_overview import StageOverview

WIDE, NARROW = 800, 760  # detail width at which the two views go side by side / back to tabs


def summary_text(report: dict, model_name: str) -> str:
    h, w = report["input_size"]
    blocks = "-".join(map(str, report["block_config"]))
    return (f"<b>{html.escape(model_name)}</b>: DenseNet-BC, growth rate k = {report['growth_rate']}, dense blocks "
            f"{blocks}, {report['parameters']:,} parameters, input {w}×{h}. Each layer of a dense block reads the "
            f"feature maps of <i>all</i> earlier layers of the block (concatenated) and adds k new ones; "
            f"transitions compress the channels (×{report['compression']}) and halve the resolution.")


def block_title(block: dict) -> str:
    return (f"{block['name']}: {block['layers']} layers, k = {block['growth_rate']}, {block['in_channels']} → "
            f"{block['out_channels']} channels at {block['width']}×{block['height']}")


def connections_text(block: dict, exit_name: str) -> str:
    layers, k, k0 = block["layers"], block["growth_rate"], block["in_channels"]
    widths = [k0 + i * k for i in range(layers + 1)]
    shown = ", ".join(map(str, widths)) if layers <= 4 else f"{widths[0]}, {widths[1]}, {widths[2]}, …, {widths[-1]}"
    return (f"{block['connections']} direct connections, L(L+1)/2 = {layers}·{layers + 1}/2: layer l reads the "
            f"block input and all l − 1 earlier layers. Channels grow by k = {k} per layer: {shown}. "
            f"Dashed: {exit_name} reads all {widths[-1]}. Hover a node for details.")


def plain_parameters(block: dict) -> int:
    """A plain CNN through the block's widths (``model.architecture.plain_chain_parameters``, in the report)."""
    return block["plain_parameters"]


def parameters_text(block: dict) -> str:
    dense, plain = block["parameters"], plain_parameters(block)
    k, k0, out = block["growth_rate"], block["in_channels"], block["out_channels"]
    return (f"Parameters: {dense:,} in this block. A plain CNN through the same widths ({k0} → {k0 + k} → … → "
            f"{out}: BN-ReLU-Conv3×3 from each width to the next, no concatenation) needs {plain:,}, "
            f"{plain / max(1, dense):.1f}× as many: a dense layer computes only k = {k} new channels and reuses "
            f"all the others.")


def wrapped(text: str = "", rich: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def heading(text: str) -> QLabel:
    label = wrapped(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area: squeezed below its size, it scrolls instead of cutting text."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setMinimumWidth(widget.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width())
    return area


class ArchitectureDialog(QDialog):
    layerChosen = Signal(str)

    def __init__(self, report: dict, model_name: str, parent=None) -> None:
        super().__init__(parent)
        self.report = report
        self.setWindowTitle(f"Explore DenseNet — {model_name}")
        stages = report["stages"]
        self.blocks = {s["name"]: s for s in stages if s["kind"] == "denseblock"}
        self.reuse = {r["block"]: r for r in report.get("feature_reuse", [])}
        taps = {s["name"] for s in stages if s["kind"] in ("denseblock", "transition")} | {"norm5"}

        layout = QVBoxLayout(self)
        layout.addWidget(wrapped(summary_text(report, model_name), rich=True))
        body = QHBoxLayout()
        layout.addLayout(body, 1)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.overview = StageOverview(stages, taps & {s["name"] for s in stages})
        self.overview.stageClicked.connect(self._stage_clicked)
        left_layout.addWidget(self.overview)
        left_layout.addWidget(wrapped("Click a dense block, a transition or norm5: the main window shows its "
                                      "heatmap, and this window the dense block it belongs to."))
        left_layout.addStretch(1)
        left_scroll = scrolled(left)
        left_scroll.setMinimumWidth(self.overview.sizeHint().width() + left_scroll.verticalScrollBar().sizeHint()
                                    .width() + 4)
        left_scroll.setMaximumWidth(left_scroll.minimumWidth())
        body.addWidget(left_scroll)
        self.buttons = {name: row for name, row in self.overview.rows.items() if row.clickable}

        right = QVBoxLayout()
        body.addLayout(right, 1)
        self.title = heading("")
        right.addWidget(self.title)

        connectivity = QWidget()
        c_layout = QVBoxLayout(connectivity)
        self.headings = [heading("Connectivity")]
        c_layout.addWidget(self.headings[0])
        self.connectivity = ConnectivityView()
        self.connections_label = wrapped()
        self.parameters_label = wrapped()
        c_layout.addWidget(self.connectivity, 1)
        c_layout.addWidget(self.connections_label)
        c_layout.addWidget(self.parameters_label)

        reuse = QWidget()
        r_layout = QVBoxLayout(reuse)
        self.headings.append(heading("Feature reuse, from the weights"))
        r_layout.addWidget(self.headings[1])
        self.reuse_view = FeatureReuseView()
        r_layout.addWidget(self.reuse_view, 1)
        scale_row = QHBoxLayout()
        scale_label = QLabel("100% =")
        self.scale = QComboBox()
        for key, text in SCALES.items():
            self.scale.addItem(text, key)
        self.scale.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.scale.currentIndexChanged.connect(lambda _i: self.reuse_view.set_scale(self.scale.currentData()))
        scale_label.setBuddy(self.scale)
        scale_row.addWidget(scale_label)
        scale_row.addWidget(self.scale)
        scale_row.addStretch(1)
        r_layout.addLayout(scale_row)
        self.reuse_label = wrapped()
        r_layout.addWidget(self.reuse_label)
        if not self.reuse:
            self.reuse_view.hide()
            self.scale.setEnabled(False)

        self.pages = [(scrolled(connectivity), "Connectivity"), (scrolled(reuse), "Feature reuse (weights)")]
        for page, _ in self.pages:
            page.widget().setMinimumHeight(330)
        self.tabs = QTabWidget()
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setChildrenCollapsible(False)
        self.split.setHandleWidth(12)
        right.addWidget(self.tabs, 1)
        right.addWidget(self.split, 1)
        self.wide: bool | None = None
        self._arrange(False)

        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        # The side-by-side arrangement needs more room than tabs; resizeEvent switches to tabs in time, so
        # the window may always shrink to what the tabs need.
        self.setMinimumSize(self.minimumSizeHint())
        self.resize(1180, 760)
        if self.blocks:
            self.show_block(next(iter(self.blocks)))

    # -- the chosen block ------------------------------------------------------
    def block_of(self, stage: str) -> str | None:
        """The dense block a tap belongs to: itself, the block a transition follows, the last block for norm5."""
        if stage in self.blocks:
            return stage
        if stage.startswith("transition"):
            return f"denseblock{stage.removeprefix('transition')}"
        return next(reversed(self.blocks)) if stage == "norm5" and self.blocks else None

    def exit_of(self, block: str) -> tuple[str, int]:
        """(name, output channels) of what reads the block: its transition, or the classifier."""
        names = [s["name"] for s in self.report["stages"]]
        following = self.report["stages"][names.index(block) + 1]
        if following["kind"] == "transition":
            return following["name"], following["out_channels"]
        return "classifier", self.report["num_classes"]

    def show_block(self, name: str) -> None:
        """Show the dense block ``name`` (or the block that the tap ``name`` belongs to)."""
        block_name = self.block_of(name)
        if block_name is None:
            return
        self.overview.select(name)
        self.current_block = block_name
        block = self.blocks[block_name]
        exit_name, exit_channels = self.exit_of(block_name)
        self.title.setText(block_title(block))
        self.connectivity.set_block(block, exit_name, exit_channels)
        self.connections_label.setText(connections_text(block, exit_name))
        self.parameters_label.setText(parameters_text(block))
        reuse = self.reuse.get(block_name)
        self.reuse_view.set_reuse(reuse)
        if reuse is None:
            self.reuse_label.setText("Feature reuse needs the model's weights; this report only has its shape.")
        else:
            self.reuse_label.setText(
                f"Cell (s, l): the mean |weight| that layer l's first convolution (1×1) gives to the channels "
                f"source s produced (s = in: the block input); column {'C' if exit_name == 'classifier' else 'T'}: "
                f"{exit_name}. Hover a cell for its value. {reuse_summary(reuse)}")

    def _stage_clicked(self, name: str) -> None:
        self.show_block(name)
        self.layerChosen.emit(name)

    # -- layout ------------------------------------------------------------------
    def _arrange(self, wide: bool) -> None:
        """The two views side by side (``wide``) or as tabs."""
        if wide == self.wide:
            return
        self.wide = wide
        current = self.tabs.currentIndex()
        while self.tabs.count():
            self.tabs.removeTab(0)
        for page, title in self.pages:
            if wide:
                self.split.addWidget(page)
            else:
                self.tabs.addTab(page, title)
            page.show()
        for label in self.headings:
            label.setVisible(wide)
        if wide:
            self.split.setSizes([1, 1])
        self.tabs.setVisible(not wide)
        self.split.setVisible(wide)
        if not wide:
            self.tabs.setCurrentIndex(max(0, current))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        room = self.width() - self.overview.width()
        self._arrange(room >= WIDE if not self.wide else room >= NARROW)
