"""The settings dialog: model pack, where models run, refinement defaults, thumbnail cache,
threads. Engine settings are stored in the library (as ``photosearch settings`` does); the
window's own ones in its state file."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

DEVICES = ["auto", "cpu", "gpu"]


@dataclass
class SettingsValues:
    packs: list[str]
    pack: str | None
    device: str
    rerank_depth: int
    rerank_beta: float | None  # None: the pack's own
    thumbnail_cache_mb: int
    threads: int  # 0: automatic


class SettingsDialog(QDialog):
    def __init__(self, values: SettingsValues, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Settings"))
        form = QFormLayout(self)
        self.pack = QComboBox()
        self.pack.addItems(values.packs)
        if values.pack in values.packs:
            self.pack.setCurrentText(values.pack)
        form.addRow(self.tr("Model pack"), self.pack)
        self.device = QComboBox()
        for d, label in zip(
            DEVICES,
            [self.tr("Automatic (a working GPU, else the CPU)"), self.tr("CPU"), self.tr("GPU")],
            strict=True,
        ):
            self.device.addItem(label, d)
        self.device.setCurrentIndex(max(0, DEVICES.index(values.device)))
        form.addRow(self.tr("Run models on"), self.device)
        self.depth = QSpinBox(minimum=0, maximum=1000, value=values.rerank_depth)
        self.depth.setSpecialValueText(self.tr("off (fast only)"))
        form.addRow(self.tr("Refine the top"), self.depth)
        self.beta = QDoubleSpinBox(minimum=-1.0, maximum=100.0, decimals=2, singleStep=0.1)
        self.beta.setSpecialValueText(self.tr("the pack's own"))
        self.beta.setValue(-1.0 if values.rerank_beta is None else values.rerank_beta)
        form.addRow(self.tr("Refinement weight (β)"), self.beta)
        self.cache = QSpinBox(minimum=50, maximum=100_000, singleStep=100, suffix=" MiB")
        self.cache.setValue(values.thumbnail_cache_mb)
        form.addRow(self.tr("Thumbnail cache"), self.cache)
        self.threads = QSpinBox(minimum=0, maximum=256, value=values.threads)
        self.threads.setSpecialValueText(self.tr("automatic"))
        form.addRow(self.tr("Threads"), self.threads)
        form.addRow(
            QLabel(
                self.tr(
                    "A new model pack takes over once your photos are re-encoded with it. "
                    "Device and threads apply the next time photosearch starts."
                )
            )
        )
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self, packs: list[str]) -> SettingsValues:
        beta = self.beta.value()
        return SettingsValues(
            packs=packs,
            pack=self.pack.currentText() or None,
            device=self.device.currentData(),
            rerank_depth=self.depth.value(),
            rerank_beta=None if beta < 0 else beta,
            thumbnail_cache_mb=self.cache.value(),
            threads=self.threads.value(),
        )
