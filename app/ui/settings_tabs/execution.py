"""Execution: where models run (provider) and how many swap workers, with a GPU memory estimate.

These are InferenceSettings / EngineOptions, not PipelineSettings: the tab reports them through its
own `execution_changed(provider, workers)` signal.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from app.core.settings import ProviderHint
from app.pipeline.job_state import EngineOptions
from app.ui.settings_tabs.vram import RESOLUTIONS, vram_estimate_mb
from app.ui.settings_tabs.widgets import ChoiceCombo, labelled

GPU_AUTO_WORKERS = 2  # EngineOptions.worker_count's choice on a GPU when workers is 0
PROVIDERS: tuple[tuple[str, ProviderHint, str], ...] = (
    ("Auto", "auto", "Each model runs where the catalog says it runs best."),
    ("TensorRT", "tensorrt", "Fastest on NVIDIA GPUs; the first run of each model builds an engine (slow)."),
    ("CUDA", "cuda", "NVIDIA GPUs, no engine build."),
    ("CPU", "cpu", "No GPU needed; much slower."),
)
ESTIMATE_TIP = (
    "A rough estimate, not a measurement: decoded frames waiting and in the workers, a few working "
    "copies per worker, and the chosen models' sizes with a margin. Real use varies with the provider, "
    "TensorRT engines and the video decoder."
)


class ExecutionTab(QWidget):
    execution_changed = Signal(str, int)
    title = "Execution"

    def __init__(self) -> None:
        super().__init__()
        self.queue_frames = EngineOptions().queue
        self._model_bytes = 0
        self.provider = ChoiceCombo[ProviderHint]("Where the models run.")
        for text, hint, tip in PROVIDERS:
            self.provider.add(text, hint, tip)
        self.workers = QSpinBox()
        self.workers.setRange(0, 16)
        self.workers.setSpecialValueText("Auto")
        self.workers.setToolTip(
            "Frames swapped at the same time. Auto: 2 on a GPU, half the CPU cores otherwise. More "
            "workers can be faster but take more memory."
        )
        self.estimates: dict[str, QLabel] = {}
        form = QFormLayout()
        form.addRow(labelled("Provider", self.provider.toolTip()), self.provider)
        form.addRow(labelled("Swap workers", self.workers.toolTip()), self.workers)
        self.estimate_note = labelled("Estimated GPU memory for video (an estimate):", ESTIMATE_TIP)
        self.estimate_note.setWordWrap(True)
        form.addRow(self.estimate_note)
        for name, _width, _height in RESOLUTIONS:
            self.estimates[name] = labelled("", ESTIMATE_TIP)
            form.addRow(labelled(name, ESTIMATE_TIP), self.estimates[name])
        outer = QVBoxLayout(self)
        outer.addLayout(form)
        outer.addStretch(1)

        self.provider.currentIndexChanged.connect(self._changed)
        self.workers.valueChanged.connect(self._changed)
        self.show_estimate(0)

    def execution(self) -> tuple[str, int]:
        return self.provider.value(), self.workers.value()

    def set_execution(self, provider: str, workers: int) -> None:
        """Show a provider and worker count without emitting `execution_changed`."""
        self.blockSignals(True)
        try:
            hint = next((h for _text, h, _tip in PROVIDERS if h == provider), None)
            if hint is None:
                known = ", ".join(h for _t, h, _tip in PROVIDERS)
                raise ValueError(f"unknown provider '{provider}' (known: {known})")
            self.provider.set_value(hint)
            self.workers.setValue(workers)
        finally:
            self.blockSignals(False)
        self.show_estimate(self._model_bytes)

    def show_estimate(self, model_bytes: int) -> None:
        self._model_bytes = model_bytes
        workers = self.workers.value() or GPU_AUTO_WORKERS
        cpu = self.provider.value() == "cpu"
        for name, width, height in RESOLUTIONS:
            mb = vram_estimate_mb(width, height, self.queue_frames, workers, model_bytes)
            text = f"≈ {mb / 1024:.1f} GB"
            self.estimates[name].setText(text + (" (CPU: in main memory instead)" if cpu else ""))

    def estimate_mb(self, resolution: str) -> int:
        """The estimate the label shows for "720p", "1080p" or "4K", in MiB."""
        width, height = next((w, h) for name, w, h in RESOLUTIONS if name == resolution)
        workers = self.workers.value() or GPU_AUTO_WORKERS
        return vram_estimate_mb(width, height, self.queue_frames, workers, self._model_bytes)

    def _changed(self, _value: int) -> None:
        self.show_estimate(self._model_bytes)
        provider, workers = self.execution()
        self.execution_changed.emit(provider, workers)
