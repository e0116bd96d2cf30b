"""The performance dock: per-stage milliseconds over time, fps and latency, VRAM, recent fallbacks.

The app feeds it (it has no timer of its own): `add_sample` once per frame or per profiling tick. Each
series keeps the last `history` samples in a deque; curves are created once per stage and updated with
`setData`. Curves are redrawn at most every `redraw_interval_s` (painting two plots costs ~10 ms in
pyqtgraph, too much per frame at 30-60 fps); `flush()` draws the latest samples at once (call it when a
feed ends). While the dock is hidden (closed, or a tab behind another) samples are still kept but
nothing is drawn; showing the dock draws the latest state.

Feeds that run for a long time (an export, live mode) sample a StageTimer through a `DockFeed`: at most
one sample per `SAMPLE_INTERVAL_S`, each with the stage means and frame rate since the previous one
(means since the start would flatten out and hide a slowdown).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QDockWidget, QLabel, QListWidget, QVBoxLayout, QWidget

from app.core.profiling import StageTimer

HISTORY = 300
REDRAW_INTERVAL_S = 0.1
MAX_EVENTS = 50
SAMPLE_INTERVAL_S = 0.1  # a DockFeed's samples: at most 10 a second
_GB = 1024.0  # MB per GB, as torch and nvidia-smi count
_VRAM_WARN = 0.9
_COLOURS = (
    "#4e9af1", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
    "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
FPS_COLOUR = "#59a14f"
LATENCY_COLOUR = "#f28e2b"


class _Series:
    """(sample index, value) pairs within the window, and the curve that draws them."""

    __slots__ = ("curve", "dirty", "x", "y")

    def __init__(self, curve: pg.PlotDataItem) -> None:
        self.curve = curve
        self.x: deque[int] = deque()
        self.y: deque[float] = deque()
        self.dirty = False

    def append(self, x: int, y: float) -> None:
        self.x.append(x)
        self.y.append(y)
        self.dirty = True

    def trim(self, oldest: int) -> None:
        while self.x and self.x[0] < oldest:
            self.x.popleft()
            self.y.popleft()
            self.dirty = True

    def draw(self) -> None:
        n = len(self.x)
        xs = np.fromiter(self.x, dtype=np.float64, count=n)
        ys = np.fromiter(self.y, dtype=np.float64, count=n)
        self.curve.setData(xs, ys, skipFiniteCheck=True)
        self.dirty = False

    def clear(self) -> None:
        self.x.clear()
        self.y.clear()
        self.dirty = True


def _pen(colour: str) -> object:
    return pg.mkPen(colour, width=1)  # cosmetic 1 px: wider pens paint many times slower


def vram_text(used_mb: float | None, total_mb: float | None) -> str:
    if used_mb is None:
        return "VRAM: n/a"
    if not total_mb:
        return f"VRAM: {used_mb / _GB:.1f} GB"
    share = used_mb / total_mb
    return f"VRAM: {used_mb / _GB:.1f} / {total_mb / _GB:.1f} GB ({share:.0%})"


class DockFeed:
    """Turns a running job's StageTimer and its count of finished frames into dock samples: the mean
    milliseconds per stage over the samples recorded since the previous sample (stages with none are
    left out) and the frames per second over the same time. Plain Python, read on the GUI thread; the
    timer is thread-safe, so the engine's threads keep recording meanwhile."""

    def __init__(
        self, timer: StageTimer, frames: int, now: float, interval_s: float = SAMPLE_INTERVAL_S
    ) -> None:
        """`frames` finished at `now` (time.monotonic()) are where the first sample's rate starts."""
        self.timer = timer
        self.interval_s = interval_s
        self._seen: dict[str, int] = {}  # samples per stage already reported
        self._first = (now, frames)
        self._last = (now, frames)

    def due(self, now: float) -> bool:
        """Whether `interval_s` passed since the previous sample (or the start)."""
        return now - self._last[0] >= self.interval_s

    def take(self, frames: int, now: float) -> tuple[dict[str, float], float]:
        """Stage means and frames per second since the previous sample; `frames` is the count now."""
        then, before = self._last
        self._last = (now, frames)
        return self._stage_means(), _rate(frames - before, now - then)

    def finish(self, frames: int, now: float) -> tuple[dict[str, float], float] | None:
        """The last sample, when the job ended: the stage means not reported yet and the frame rate of
        the whole job (the tail since the previous sample may be too short to time); None when no
        frame finished since that sample."""
        if frames <= self._last[1]:
            return None
        then, before = self._first
        self._last = (now, frames)
        return self._stage_means(), _rate(frames - before, now - then)

    def _stage_means(self) -> dict[str, float]:
        means = {}
        for name, fresh in self.timer.samples_since(self._seen).items():
            if fresh:
                means[name] = sum(fresh) / len(fresh)
        return means


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 and count > 0 else 0.0


class PerformanceDock(QDockWidget):
    def __init__(
        self,
        parent: QWidget | None = None,
        history: int = HISTORY,
        max_events: int = MAX_EVENTS,
        redraw_interval_s: float = REDRAW_INTERVAL_S,
    ) -> None:
        super().__init__("Performance", parent)
        self.setObjectName("performance_dock")
        self.history = history
        self.max_events = max_events
        self.redraw_interval_s = redraw_interval_s
        self._drawn_at = -math.inf  # time.monotonic() of the last redraw
        self._n = 0  # index of the next sample
        self._stages: dict[str, _Series] = {}

        self.stage_plot = pg.PlotWidget()
        self._stage_item = self.stage_plot.getPlotItem()
        self._stage_item.setLabel("left", "stage", units="ms")
        self._stage_item.setLabel("bottom", "sample")
        self._stage_item.showGrid(x=False, y=False)
        self._stage_item.addLegend(offset=(-5, 5), labelTextSize="8pt")
        self._stage_item.enableAutoRange(x=False, y=True)

        self.rate_plot = pg.PlotWidget()
        self._rate_item = self.rate_plot.getPlotItem()
        self._rate_item.setLabel("left", "fps")
        self._rate_item.setLabel("right", "latency", units="ms")
        self._rate_item.setLabel("bottom", "sample")
        self._rate_item.showGrid(x=False, y=False)
        self._rate_item.enableAutoRange(x=False, y=True)
        self._rate_item.setXLink(self._stage_item)
        legend = self._rate_item.addLegend(offset=(-5, 5), labelTextSize="8pt")
        # Latency on its own y axis (right): a second view box sharing the x axis.
        self._latency_view = pg.ViewBox()
        self._rate_item.scene().addItem(self._latency_view)
        self._rate_item.getAxis("right").linkToView(self._latency_view)
        self._latency_view.setXLink(self._rate_item.vb)
        self._rate_item.vb.sigResized.connect(self._sync_latency_view)
        self._fps = _Series(self._rate_item.plot(pen=_pen(FPS_COLOUR), name="fps"))
        latency_curve = pg.PlotDataItem(pen=_pen(LATENCY_COLOUR))
        self._latency_view.addItem(latency_curve)
        legend.addItem(latency_curve, "latency ms")
        self._latency = _Series(latency_curve)

        self.summary_label = QLabel("No samples yet")
        self.vram_label = QLabel(vram_text(None, None))
        self.events = QListWidget()
        self.events.setMaximumHeight(110)
        self.events.setWordWrap(True)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.stage_plot, 3)
        layout.addWidget(self.rate_plot, 2)
        layout.addWidget(self.vram_label)
        layout.addWidget(QLabel("Recent fallbacks"))
        layout.addWidget(self.events)
        self.setWidget(body)

    # ---- API ----------------------------------------------------------------------------------

    def add_sample(
        self, stage_ms: Mapping[str, float], fps: float | None = None, latency_ms: float | None = None
    ) -> None:
        """One sample: milliseconds per stage (a new stage gets its own curve), and optionally the frame
        rate and end-to-end latency. Non-finite values are skipped."""
        x = self._n
        self._n += 1
        for stage, ms in stage_ms.items():
            if math.isfinite(ms):
                self._series_for(stage).append(x, float(ms))
        if fps is not None and math.isfinite(fps):
            self._fps.append(x, float(fps))
        if latency_ms is not None and math.isfinite(latency_ms):
            self._latency.append(x, float(latency_ms))
        oldest = self._n - self.history
        for series in self._all_series():
            series.trim(oldest)
        self._summarise(stage_ms, fps, latency_ms)
        if self.isVisible() and time.monotonic() - self._drawn_at >= self.redraw_interval_s:
            self._redraw()

    def flush(self) -> None:
        """Draw every sample kept so far now (when visible; a hidden dock draws when shown)."""
        if self.isVisible():
            self._redraw()

    def set_vram(self, used_mb: float | None, total_mb: float | None) -> None:
        """Show VRAM in use of the total, in GB; None when unknown (no GPU)."""
        self.vram_label.setText(vram_text(used_mb, total_mb))
        high = used_mb is not None and bool(total_mb) and used_mb / float(total_mb or 1) >= _VRAM_WARN
        self.vram_label.setStyleSheet("color: #e8b04a;" if high else "")

    def add_event(self, text: str) -> None:
        """A recent event (a provider fallback), newest on top; the oldest go beyond max_events."""
        self.events.insertItem(0, f"{time.strftime('%H:%M:%S')}  {text}")
        self.events.item(0).setToolTip(text)
        while self.events.count() > self.max_events:
            self.events.takeItem(self.events.count() - 1)

    def clear(self) -> None:
        """Forget every sample, stage curve and event (the VRAM readout stays: it is a current reading)."""
        for series in self._stages.values():
            self._stage_item.removeItem(series.curve)
        self._stages.clear()
        self._fps.clear()
        self._latency.clear()
        self._n = 0
        self.events.clear()
        self.summary_label.setText("No samples yet")
        self._redraw()

    # ---- inspection (tests, the main window) ------------------------------------------------------

    def stages(self) -> list[str]:
        return list(self._stages)

    def curve(self, stage: str) -> pg.PlotDataItem:
        return self._stages[stage].curve

    @property
    def fps_curve(self) -> pg.PlotDataItem:
        return self._fps.curve

    @property
    def latency_curve(self) -> pg.PlotDataItem:
        return self._latency.curve

    def points(self, stage: str) -> int:
        """Samples kept for a stage (drawn or not yet)."""
        return len(self._stages[stage].x)

    # ---- internals ----------------------------------------------------------------------------

    def _series_for(self, stage: str) -> _Series:
        series = self._stages.get(stage)
        if series is None:
            colour = _COLOURS[len(self._stages) % len(_COLOURS)]
            series = _Series(self._stage_item.plot(pen=_pen(colour), name=stage))
            self._stages[stage] = series
        return series

    def _all_series(self) -> list[_Series]:
        return [*self._stages.values(), self._fps, self._latency]

    def _redraw(self) -> None:
        self._drawn_at = time.monotonic()
        for series in self._all_series():
            if series.dirty:
                series.draw()
        left = max(0, self._n - self.history)
        self._stage_item.setXRange(left, max(left + 1, self._n - 1), padding=0)

    def _summarise(self, stage_ms: Mapping[str, float], fps: float | None, latency_ms: float | None) -> None:
        parts = []
        if fps is not None:
            parts.append(f"{fps:.1f} fps")
        if latency_ms is not None:
            parts.append(f"latency {latency_ms:.1f} ms")
        total = sum(ms for ms in stage_ms.values() if math.isfinite(ms))
        parts.append(f"stages {total:.1f} ms")
        self.summary_label.setText(" · ".join(parts))

    def _sync_latency_view(self) -> None:
        self._latency_view.setGeometry(self._rate_item.vb.sceneBoundingRect())
        self._latency_view.linkedViewChanged(self._rate_item.vb, self._latency_view.XAxis)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._redraw()
