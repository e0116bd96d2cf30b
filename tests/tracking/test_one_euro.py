"""The One-Euro filter: pass-through start, smoothing at rest, following motion, exact state."""

from __future__ import annotations

import numpy as np
import pytest

from app.tracking.one_euro import OneEuroFilter


def test_the_first_sample_passes_and_a_constant_stays_constant() -> None:
    smoother = OneEuroFilter(1.0, 0.1)
    value = np.array([[3.0, 4.0], [5.0, 6.0]])
    for frame in range(10):
        assert np.array_equal(smoother(value, frame / 30), value)


def test_noise_at_rest_is_cut_and_motion_opens_the_cutoff() -> None:
    rng = np.random.default_rng(1)
    noisy = 100 + rng.normal(0, 1.0, size=(300, 4))
    still = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    out = np.array([still(x, i / 30) for i, x in enumerate(noisy)])
    assert out[30:].std() < 0.4 * noisy[30:].std()
    ramp = np.arange(60, dtype=np.float64) * 10  # 300 units/s
    lazy, eager = OneEuroFilter(1.0, 0.0), OneEuroFilter(1.0, 0.1)
    lag_lazy = ramp[-1] - [lazy(x, i / 30) for i, x in enumerate(ramp)][-1]
    lag_eager = ramp[-1] - [eager(x, i / 30) for i, x in enumerate(ramp)][-1]
    assert lag_eager < 0.2 * lag_lazy


def test_a_repeated_time_returns_the_last_output_and_a_new_shape_restarts() -> None:
    smoother = OneEuroFilter()
    smoother(np.zeros(3), 0.0)
    first = smoother(np.ones(3), 0.1)
    assert np.array_equal(smoother(np.full(3, 9.0), 0.1), first)
    assert np.array_equal(smoother(np.full(2, 7.0), 0.2), np.full(2, 7.0))


def test_state_round_trip_continues_exactly_and_reset_forgets() -> None:
    rng = np.random.default_rng(2)
    samples = rng.normal(size=(40, 5, 2))
    one = OneEuroFilter(0.7, 0.05, 1.3)
    for i in range(20):
        one(samples[i], i / 25)
    other = OneEuroFilter.from_state(one.state())
    for i in range(20, 40):
        assert np.array_equal(one(samples[i], i / 25), other(samples[i], i / 25))
    one.reset()
    assert not one.primed and np.array_equal(one(samples[0], 9.0), samples[0])


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0.0)
