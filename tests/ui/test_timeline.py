"""The timeline as a real (offscreen) widget, driven through its slider and buttons as a user would."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from app.ui.timeline import Timeline, format_time


@pytest.fixture
def timeline(qtbot) -> Timeline:
    widget = Timeline()
    qtbot.addWidget(widget)
    widget.resize(700, 40)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def requests(timeline: Timeline) -> list[int]:
    seen: list[int] = []
    timeline.position_requested.connect(seen.append)
    return seen


def click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_label_reads_frame_count_and_time(timeline: Timeline) -> None:
    timeline.set_length(900, 30.0)
    timeline.set_position(120)
    assert timeline.label.text() == "frame 120 / 900 · 00:04.00"
    assert format_time(3723.5) == "1:02:03.50"
    timeline.set_length(1, 0.0)  # a still image: no clock
    assert timeline.label.text() == "frame 0 / 1"


def test_every_user_slider_change_is_requested(qtbot, timeline: Timeline) -> None:
    timeline.set_length(100, 25.0)
    seen = requests(timeline)
    for value in (1, 2, 3, 10, 4):  # drag steps
        timeline.slider.setValue(value)
    assert seen == [1, 2, 3, 10, 4]
    assert timeline.position == 4

    seen.clear()
    at = QPoint(round(timeline.slider.x_of(50)), timeline.slider.height() // 2)
    qtbot.mouseClick(timeline.slider, Qt.MouseButton.LeftButton, pos=at)  # click on the track jumps there
    assert seen == [50]


def test_set_position_emits_nothing(timeline: Timeline) -> None:
    timeline.set_length(100, 25.0)
    seen = requests(timeline)
    timeline.set_position(42)
    timeline.set_position(1000)  # clamped
    timeline.set_length(10, 25.0)  # shrinking clamps silently too
    assert seen == []
    assert timeline.position == 9


def test_transport_buttons_step_and_clamp_at_the_ends(qtbot, timeline: Timeline) -> None:
    timeline.set_length(5, 10.0)
    seen = requests(timeline)
    click(qtbot, timeline.back_button)  # already at 0: nothing to ask for
    click(qtbot, timeline.forward_button)
    click(qtbot, timeline.forward_button)
    click(qtbot, timeline.last_button)
    click(qtbot, timeline.forward_button)  # already at the end
    click(qtbot, timeline.back_button)
    click(qtbot, timeline.first_button)
    assert seen == [1, 2, 4, 3, 0]

    seen.clear()
    timeline.step(-3)
    timeline.jump(99)
    timeline.step(-2)
    assert seen == [4, 2]


def test_markers_are_painted_and_toggle_asks_the_app(qtbot, timeline: Timeline) -> None:
    timeline.set_length(100, 25.0)
    timeline.set_markers([10, 60, 500])  # 500 is past the end: kept, not painted
    assert timeline.markers == frozenset({10, 60, 500})
    timeline.grab()  # paints the markers without error

    timeline.set_position(60)
    with qtbot.waitSignal(timeline.marker_toggled) as toggled:
        timeline.toggle_marker()
    assert toggled.args == [60]
    assert timeline.markers == frozenset({10, 60, 500})  # the app decides, then calls set_markers


def test_play_button_toggles_and_set_playing_is_silent(qtbot, timeline: Timeline) -> None:
    timeline.set_length(100, 25.0)
    seen: list[bool] = []
    timeline.play_toggled.connect(seen.append)
    click(qtbot, timeline.play_button)
    click(qtbot, timeline.play_button)
    timeline.toggle_play()
    assert seen == [True, False, True]

    timeline.set_playing(False)
    assert not timeline.play_button.isChecked()
    assert seen == [True, False, True]


def test_inert_without_frames(qtbot, timeline: Timeline) -> None:
    seen = requests(timeline)
    toggled: list[object] = []
    timeline.play_toggled.connect(toggled.append)
    timeline.marker_toggled.connect(toggled.append)
    assert not timeline.slider.isEnabled()
    assert not timeline.play_button.isEnabled()
    click(qtbot, timeline.forward_button)
    timeline.step(1)
    timeline.jump(5)
    timeline.toggle_play()
    timeline.toggle_marker()
    assert (seen, toggled) == ([], [])
    assert timeline.label.text() == "no frames"

    timeline.set_length(3, 30.0)
    assert timeline.slider.isEnabled()
