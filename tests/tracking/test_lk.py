"""LK with the forward-backward check: texture is followed, noise is refused; the similarity fit."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from app.tracking.lk import fit_similarity, track_points


def texture(seed: int = 0, size: tuple[int, int] = (240, 320)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random(size) * 255).astype(np.uint8), (0, 0), 2.0)


def test_points_on_texture_follow_a_shift() -> None:
    image = texture()
    shifted = np.roll(image, (3, -5), axis=(0, 1))  # down 3, left 5
    points = np.array([[100.0, 80.0], [150.0, 120.0], [200.0, 160.0]])
    flow = track_points(image, shifted, points)
    assert flow.ok.all() and flow.lost_fraction == 0.0
    np.testing.assert_allclose(flow.points, points + np.array([-5.0, 3.0]), atol=0.1)


def test_points_on_noise_or_outside_fail_the_check() -> None:
    image = texture(1)
    noise = (np.random.default_rng(2).random(image.shape) * 255).astype(np.uint8)
    flow = track_points(image, noise, np.array([[100.0, 80.0], [150.0, 120.0], [200.0, 160.0]]))
    assert flow.lost_fraction > 0.5
    edge = track_points(image, np.roll(image, -8, axis=1), np.array([[2.0, 100.0]]))
    assert not edge.ok.any()  # it went off the image


def test_frames_must_be_grey_and_alike() -> None:
    with pytest.raises(ValueError, match="grey uint8"):
        track_points(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="sizes differ"):
        track_points(np.zeros((8, 8), np.uint8), np.zeros((9, 8), np.uint8), np.zeros((1, 2)))


def test_the_similarity_fit_recovers_a_known_transform() -> None:
    source = np.random.default_rng(3).uniform(0, 100, (6, 2))
    angle = math.radians(7)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    target = 1.1 * source @ rotation.T + [4.0, -2.0]
    fit = fit_similarity(source, target)
    assert fit is not None
    scale, found_rotation, translation = fit
    assert scale == pytest.approx(1.1)
    np.testing.assert_allclose(found_rotation, rotation, atol=1e-9)
    np.testing.assert_allclose(translation, [4.0, -2.0], atol=1e-9)
    assert fit_similarity(source[:1], target[:1]) is None
