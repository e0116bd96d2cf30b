"""The CSRT/KCF box tracker: it follows a moving patch and admits losing it to noise."""

from __future__ import annotations

import numpy as np
import pytest

from app.tracking.fallback import BoxTracker
from tests.tracking.test_lk import texture


@pytest.mark.parametrize("kind", ["csrt", "kcf"])
def test_the_box_follows_a_moving_patch(kind: str) -> None:
    image = texture(5)
    tracker = BoxTracker(kind)  # type: ignore[arg-type]
    assert tracker.init(image, (100.4, 80.0, 160.0, 150.0)) == (100.0, 80.0, 160.0, 150.0)
    box = None
    for step in range(1, 9):
        box = tracker.update(np.roll(image, (step, 2 * step), axis=(0, 1)))
        assert box is not None
    assert box is not None
    assert abs(box[0] - 116) <= 3 and abs(box[1] - 88) <= 3
    colour = np.repeat(image[:, :, None], 3, axis=2)  # BGR input works too
    assert tracker.init(colour, (100, 80, 160, 150)) is not None and tracker.update(colour) is not None


def test_noise_a_flat_image_or_a_tiny_box_lose_it() -> None:
    image = texture(6)
    tracker = BoxTracker()
    tracker.init(image, (100, 80, 160, 150))
    noise = (np.random.default_rng(0).random(image.shape) * 255).astype(np.uint8)
    assert tracker.update(noise) is None and not tracker.active
    assert tracker.update(image) is None  # stays lost until started again
    assert tracker.init(np.full_like(image, 90), (100, 80, 160, 150)) is None
    assert tracker.init(image, (10, 10, 14, 14)) is None
    assert tracker.init(image, (-50, -50, -10, -10)) is None
