"""The performance dock and the words for engine facts (messages), on real offscreen widgets."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

from app.core.profiling import StageTimer
from app.inference.fallbacks import FallbackEvent
from app.inference.providers import Provider
from app.ui.messages import (
    draft_note,
    fallback_message,
    fallback_note,
    plain_reason,
    provider_messages,
    provider_notes,
)
from app.ui.performance import DockFeed, PerformanceDock, vram_text

ALL = {Provider.TENSORRT, Provider.CUDA, Provider.CPU}
NO_TRT = {Provider.CUDA, Provider.CPU}
CPU = {Provider.CPU}


@pytest.fixture
def dock(qtbot) -> PerformanceDock:
    widget = PerformanceDock(redraw_interval_s=0)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def drawn(curve) -> int:
    xs, _ = curve.getData()
    return 0 if xs is None else len(xs)


def test_dock_keeps_the_last_300_samples_per_curve(dock: PerformanceDock) -> None:
    for i in range(400):
        dock.add_sample({"detect": 2.0 + i % 3, "swap": 5.0}, fps=30.0, latency_ms=40.0 + i % 5)
    assert dock.stages() == ["detect", "swap"]
    for stage in ("detect", "swap"):
        assert dock.points(stage) == 300
        assert drawn(dock.curve(stage)) == 300
        xs, _ = dock.curve(stage).getData()
        assert (xs[0], xs[-1]) == (100, 399)
    assert drawn(dock.fps_curve) == 300
    assert drawn(dock.latency_curve) == 300
    assert "30.0 fps" in dock.summary_label.text()


def test_new_stages_add_curves_and_reuse_existing_ones(dock: PerformanceDock) -> None:
    dock.add_sample({"detect": 1.0})
    first = dock.curve("detect")
    dock.add_sample({"detect": 1.0, "restore": 9.0})
    assert dock.stages() == ["detect", "restore"]
    assert dock.curve("detect") is first  # reused, not rebuilt
    assert drawn(dock.curve("restore")) == 1
    legend = dock.stage_plot.getPlotItem().legend
    assert [label.text for _, label in legend.items] == ["detect", "restore"]


def test_a_stage_that_stops_reporting_ages_out(qtbot) -> None:
    dock = PerformanceDock(history=10, redraw_interval_s=0)
    qtbot.addWidget(dock)
    dock.show()
    dock.add_sample({"warmup": 100.0})
    for _ in range(12):
        dock.add_sample({"swap": 5.0, "bad": float("nan")})
    assert dock.points("warmup") == 0
    assert dock.points("swap") == 10
    assert "bad" not in dock.stages()  # only non-finite values: no curve


def test_hidden_dock_draws_when_shown(qtbot) -> None:
    dock = PerformanceDock()
    qtbot.addWidget(dock)
    dock.add_sample({"swap": 5.0})
    assert dock.points("swap") == 1
    assert drawn(dock.curve("swap")) == 0  # nothing drawn while hidden
    dock.show()
    assert drawn(dock.curve("swap")) == 1


def test_redraws_are_throttled_and_flush_draws(qtbot) -> None:
    dock = PerformanceDock(redraw_interval_s=3600)
    qtbot.addWidget(dock)
    dock.show()
    for _ in range(5):
        dock.add_sample({"swap": 5.0})
    assert drawn(dock.curve("swap")) == 0  # showing drew (nothing) an instant ago: these wait
    dock.flush()
    assert drawn(dock.curve("swap")) == 5


def test_a_dock_feed_reports_stage_means_and_frame_rate_since_its_previous_sample() -> None:
    timer = StageTimer()
    timer.record("swap", 10.0)
    timer.record("swap", 20.0)
    feed = DockFeed(timer, frames=4, now=100.0, interval_s=0.1)
    assert not feed.due(100.05) and feed.due(100.2)
    assert feed.take(frames=14, now=101.0) == ({"swap": 15.0}, 10.0)
    timer.record("swap", 40.0)
    timer.record("encode", 2.0)
    assert not feed.due(101.05)
    assert feed.take(frames=16, now=101.5) == ({"swap": 40.0, "encode": 2.0}, 4.0)  # only what is new
    assert feed.take(frames=16, now=102.0) == ({}, 0.0)  # nothing new: no stage, no rate
    assert feed.finish(frames=16, now=102.1) is None  # nothing finished since the last sample
    timer.record("encode", 4.0)
    # the job ended: the tail's stages, and the rate of the whole run (the tail may be too short to time)
    assert feed.finish(frames=24, now=104.0) == ({"encode": 4.0}, 5.0)
    timer.reset()
    timer.record("swap", 7.0)
    assert feed.take(frames=25, now=105.0)[0] == {"swap": 7.0}  # a reset timer starts afresh


def test_vram_readout(dock: PerformanceDock) -> None:
    dock.set_vram(3.2 * 1024, 80 * 1024)
    assert "3.2 / 80.0 GB" in dock.vram_label.text()
    dock.set_vram(None, None)
    assert dock.vram_label.text() == "VRAM: n/a"
    assert vram_text(512, None) == "VRAM: 0.5 GB"


def test_events_are_capped_newest_first(dock: PerformanceDock) -> None:
    for i in range(dock.max_events + 20):
        dock.add_event(f"event {i}")
    assert dock.events.count() == dock.max_events
    assert dock.events.item(0).text().endswith(f"event {dock.max_events + 19}")


def test_clear_forgets_samples_curves_and_events(dock: PerformanceDock) -> None:
    dock.add_sample({"swap": 5.0}, fps=24.0)
    dock.add_event("x")
    dock.clear()
    assert dock.stages() == []
    assert dock.events.count() == 0
    assert drawn(dock.fps_curve) == 0
    assert dock.stage_plot.getPlotItem().legend.items == []
    dock.add_sample({"swap": 5.0})
    xs, _ = dock.curve("swap").getData()
    assert list(xs) == [0]


class _Emitter(QObject):
    ping = Signal()


def test_many_qt_calls_do_not_abort_the_interpreter(qtbot) -> None:
    """The pinned PySide6 must keep None's and True's reference counts: 6.12.0 on CPython 3.11 dropped one
    per emit and per void call, and aborted the process within a minute of live plotting."""
    emitter, label = _Emitter(), QLabel()
    qtbot.addWidget(label)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(60_000):
        emitter.ping.emit()
        label.setText("x")
    assert sys.getrefcount(None) >= none_before - 100
    assert sys.getrefcount(True) >= true_before - 100


# ---- messages (no Qt) --------------------------------------------------------------------------


def test_cpu_only() -> None:
    assert provider_messages(CPU, "auto", None) == ["No GPU provider: running on the CPU, expect low speed"]
    assert provider_notes(CPU, "auto", None)[0].level == "warning"


def test_gpu_present_but_cuda_unusable() -> None:
    said = provider_messages(
        CPU, "auto", "NVIDIA H100", reasons={Provider.CUDA: "libcudnn.so.9: cannot open shared object file"}
    )
    assert said == [
        "NVIDIA H100 found, but CUDA cannot use it (its libraries are missing): "
        "running on the CPU, expect low speed"
    ]


def test_cuda_only() -> None:
    assert provider_messages(NO_TRT, "auto", "NVIDIA H100") == [
        "Running on NVIDIA H100 with CUDA",
        "TensorRT is not available: using CUDA",
    ]


def test_tensorrt_requested_but_missing() -> None:
    notes = provider_notes(NO_TRT, "tensorrt", "NVIDIA H100")
    assert [n.text for n in notes] == [
        "Running on NVIDIA H100 with CUDA",
        "TensorRT is not available: using CUDA",
    ]
    assert notes[1].level == "warning"


def test_everything_usable() -> None:
    assert provider_messages(ALL, "auto", "NVIDIA H100") == ["Running on NVIDIA H100 with TensorRT"]
    assert provider_messages(ALL, "cuda", "NVIDIA H100") == ["Running on NVIDIA H100 with CUDA"]
    assert provider_messages(ALL, "cpu", "NVIDIA H100") == [
        "Running on the CPU, as chosen in the settings: expect low speed"
    ]
    assert provider_messages(ALL, "nonsense", None) == ["Running on the GPU with TensorRT"]


def event(target: Provider | None, reason: str, phase: str = "run") -> FallbackEvent:
    return FallbackEvent("gfpgan_1.4", Provider.CUDA, target, phase, reason, 0.0)  # type: ignore[arg-type]


def test_fallback_message() -> None:
    oom = event(Provider.CPU, "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : CUDA failure 2: out of memory")
    assert fallback_message(oom, {"gfpgan_1.4": "GFPGAN 1.4"}) == (
        "GFPGAN 1.4 could not run on CUDA (out of memory); it now runs on the CPU"
    )
    assert fallback_note(oom).level == "warning"
    assert fallback_message(oom).startswith("gfpgan_1.4 could not run")  # no display name: the id
    last = fallback_note(event(None, "bad graph", phase="load"))
    assert last.text == "gfpgan_1.4 could not load on CUDA (bad graph); no other provider can run it"
    assert last.level == "error"


def test_draft_note_names_the_models_still_loading() -> None:
    names = {"gfpgan_1.4": "GFPGAN v1.4", "codeformer": "CodeFormer"}
    assert draft_note(["gfpgan_1.4"], names) == "Showing the swap without GFPGAN v1.4 while it loads…"
    assert draft_note(["gfpgan_1.4", "codeformer", "x"], names) == (
        "Showing the swap without GFPGAN v1.4, CodeFormer and x while they load…"  # no name: the id
    )


def test_plain_reason_shortens() -> None:
    assert plain_reason("x" * 200).endswith("…")
    assert len(plain_reason("x" * 200)) == 80
    assert plain_reason("\n  first line.\nsecond") == "first line"
    assert plain_reason("") == "no reason given"
