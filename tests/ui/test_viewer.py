"""The frame viewer as a real (offscreen) widget: what it renders, read back from its viewport's pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.ui.viewer import OVERLAY_COLOR, FrameViewer

W, H = 160, 90


def solid(value: int, width: int = W, height: int = H) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


@pytest.fixture
def viewer(qtbot) -> FrameViewer:
    view = FrameViewer()
    qtbot.addWidget(view)
    view.resize(320, 180)
    view.show()
    qtbot.waitExposed(view)
    return view


def rendered(viewer: FrameViewer) -> QImage:
    return viewer.viewport().grab().toImage()


def colour_at(viewer: FrameViewer, image: QImage, x: float, y: float) -> QColor:
    """The rendered colour of frame pixel (x, y)."""
    point = viewer.mapFromScene(QPointF(x, y))
    ratio = image.devicePixelRatio()
    return image.pixelColor(round(point.x() * ratio), round(point.y() * ratio))


def wheel(viewer: FrameViewer, at: QPoint, notches: int) -> None:
    event = QWheelEvent(
        QPointF(at),
        QPointF(viewer.viewport().mapToGlobal(at)),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewer.viewport(), event)


def test_shows_a_frame_fitted_and_reports_its_size(viewer: FrameViewer) -> None:
    assert viewer.frame_size is None
    frame = solid(0)
    frame[:, :, 0] = 255  # red
    viewer.show_frame(frame)
    assert viewer.frame_size == (W, H)
    assert viewer.zoom_factor == pytest.approx(2.0, rel=0.05)  # 160x90 fitted into 320x180
    assert colour_at(viewer, rendered(viewer), W / 2, H / 2) == QColor(255, 0, 0)


def test_rejects_frames_that_are_not_rgb_uint8(viewer: FrameViewer) -> None:
    with pytest.raises(ValueError, match="expected uint8"):
        viewer.show_frame(np.zeros((H, W), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        viewer.show_frame(solid(255), before=solid(0, width=W + 2))


def test_compare_modes_change_what_is_rendered(viewer: FrameViewer) -> None:
    black, white = QColor(0, 0, 0), QColor(255, 255, 255)
    viewer.show_frame(solid(255), before=solid(0))
    left, right = (W * 0.2, H / 2), (W * 0.8, H / 2)

    image = rendered(viewer)
    assert (colour_at(viewer, image, *left), colour_at(viewer, image, *right)) == (white, white)

    viewer.set_compare("before")
    image = rendered(viewer)
    assert (colour_at(viewer, image, *left), colour_at(viewer, image, *right)) == (black, black)

    viewer.set_compare("split")
    image = rendered(viewer)
    assert (colour_at(viewer, image, *left), colour_at(viewer, image, *right)) == (black, white)

    viewer.set_split(0.9)  # the line moves right: the right probe now sees the before frame
    image = rendered(viewer)
    assert (colour_at(viewer, image, *left), colour_at(viewer, image, *right)) == (black, black)

    with pytest.raises(ValueError, match="compare mode"):
        viewer.set_compare("sideways")  # type: ignore[arg-type]


def test_split_without_a_before_frame_shows_the_after_frame(viewer: FrameViewer) -> None:
    viewer.set_compare("split")
    viewer.show_frame(solid(255))
    image = rendered(viewer)
    assert colour_at(viewer, image, W * 0.2, H / 2) == QColor(255, 255, 255)


def test_dragging_the_split_line_moves_it(qtbot, viewer: FrameViewer) -> None:
    viewer.show_frame(solid(255), before=solid(0))
    viewer.set_compare("split")
    line = viewer.mapFromScene(QPointF(W * 0.5, H / 2))
    target = viewer.mapFromScene(QPointF(W * 0.25, H / 2))
    qtbot.mousePress(viewer.viewport(), Qt.MouseButton.LeftButton, pos=line)
    qtbot.mouseMove(viewer.viewport(), target)
    qtbot.mouseRelease(viewer.viewport(), Qt.MouseButton.LeftButton, pos=target)
    assert viewer.split == pytest.approx(0.25, abs=0.02)


def test_wheel_zooms_around_the_cursor_and_fit_restores(qtbot, viewer: FrameViewer) -> None:
    viewer.show_frame(solid(128))
    fitted = viewer.zoom_factor
    at = viewer.mapFromScene(QPointF(40, 30))
    with qtbot.waitSignal(viewer.zoomed) as zoomed:
        wheel(viewer, at, 2)
    assert viewer.zoom_factor == pytest.approx(fitted * 1.25**2)
    assert zoomed.args == [pytest.approx(viewer.zoom_factor)]
    under = viewer.mapToScene(at)  # the frame point under the cursor stayed there
    assert (under.x(), under.y()) == (pytest.approx(40, abs=1), pytest.approx(30, abs=1))

    wheel(viewer, at, -1)
    assert viewer.zoom_factor == pytest.approx(fitted * 1.25)
    viewer.fit()
    assert viewer.zoom_factor == pytest.approx(fitted)


def test_zoom_buttons_and_actual_size(viewer: FrameViewer) -> None:
    viewer.show_frame(solid(128))
    viewer.actual_size()
    assert viewer.zoom_factor == 1.0
    viewer.zoom_in()
    assert viewer.zoom_factor == pytest.approx(1.25)
    viewer.zoom_out()
    viewer.zoom_out()
    assert viewer.zoom_factor == pytest.approx(0.8)


def test_a_same_size_frame_keeps_zoom_and_pan_another_size_fits(viewer: FrameViewer) -> None:
    viewer.show_frame(solid(10))
    wheel(viewer, viewer.mapFromScene(QPointF(30, 20)), 3)
    zoom, centre = viewer.zoom_factor, viewer.mapToScene(viewer.viewport().rect().center())

    viewer.show_frame(solid(200))
    assert viewer.zoom_factor == zoom
    assert viewer.mapToScene(viewer.viewport().rect().center()) == centre

    viewer.show_frame(solid(200, width=W * 4, height=H * 4))
    assert viewer.frame_size == (W * 4, H * 4)
    assert viewer.zoom_factor == pytest.approx(0.5, rel=0.05)


def test_overlays_are_drawn_as_outlines_and_cleared(viewer: FrameViewer) -> None:
    box = (40.0, 20.0, 120.0, 70.0)
    viewer.show_frame(solid(0), overlays=[box])
    image = rendered(viewer)
    assert colour_at(viewer, image, 80, 20) == OVERLAY_COLOR  # on the top edge
    assert colour_at(viewer, image, 80, 45) == QColor(0, 0, 0)  # inside: an outline, not a fill

    viewer.show_frame(solid(0))
    assert colour_at(viewer, rendered(viewer), 80, 20) == QColor(0, 0, 0)
