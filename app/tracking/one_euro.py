"""The One-Euro filter (Casiez, Roussel, Vogel, CHI 2012), vectorised over numpy arrays of any shape.

Why this filter: landmark jitter is worst when a face is still and hurts least when it moves, and the
One-Euro filter is an exponential smoother whose cutoff rises with the signal's speed — steady faces get
heavy smoothing, moving faces little lag. Each element of the array gets its own speed and cutoff, so one
filter smooths a whole [N, 2] point set (or a box, or a pair of angles) in one call.

Timestamps are seconds, so the smoothing is the same at any frame rate. The state is plain floats and
numpy arrays (`state()` / `from_state()`), which is what a resumed export needs to continue exactly.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


def smoothing_factor(cutoff: FloatArray | float, dt: float) -> FloatArray:
    """The exponential smoothing factor α of a first-order low-pass at `cutoff` Hz for a step of dt s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    alpha: FloatArray = 1.0 / (1.0 + tau / dt)
    return alpha


class OneEuroFilter:
    """Smooths a stream of same-shape arrays sampled at increasing times.

    min_cutoff (Hz): the cutoff at rest; lower is smoother and laggier.
    beta (Hz per unit/s): how fast the cutoff rises with speed; higher follows motion with less lag.
    d_cutoff (Hz): the cutoff of the low-pass applied to the speed estimate itself.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(
                f"OneEuroFilter: expected min_cutoff > 0, d_cutoff > 0, beta >= 0, "
                f"got {min_cutoff}, {d_cutoff}, {beta}"
            )
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self._t: float | None = None
        self._x: FloatArray | None = None
        self._dx: FloatArray | None = None

    @property
    def primed(self) -> bool:
        """Whether a first sample has been seen since the last reset."""
        return self._x is not None

    def reset(self) -> None:
        self._t = None
        self._x = None
        self._dx = None

    def __call__(self, value: npt.ArrayLike, t_seconds: float) -> FloatArray:
        """The filtered value at time t_seconds (float64, the shape of `value`).

        The first sample (or one whose shape differs from the last) passes through unchanged and restarts
        the filter. A sample that is not later than the last one returns the last output unchanged.
        """
        x = np.array(value, dtype=np.float64)
        if self._x is None or self._t is None or self._dx is None or x.shape != self._x.shape:
            if self._x is not None and x.shape != self._x.shape:
                log.debug("One-Euro restarted: shape %s -> %s", self._x.shape, x.shape)
            self._t, self._x, self._dx = float(t_seconds), x, np.zeros_like(x)
            return x.copy()
        dt = float(t_seconds) - self._t
        if dt <= 0.0:
            return self._x.copy()
        dx = (x - self._x) / dt
        dx_hat = self._dx + smoothing_factor(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        x_hat = self._x + smoothing_factor(cutoff, dt) * (x - self._x)
        self._t, self._x, self._dx = float(t_seconds), x_hat, dx_hat
        return x_hat.copy()

    def state(self) -> dict[str, Any]:
        """Parameters and memory as plain floats and numpy arrays (copies)."""
        return {
            "min_cutoff": self.min_cutoff,
            "beta": self.beta,
            "d_cutoff": self.d_cutoff,
            "t": self._t,
            "x": None if self._x is None else self._x.copy(),
            "dx": None if self._dx is None else self._dx.copy(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OneEuroFilter:
        restored = cls(float(state["min_cutoff"]), float(state["beta"]), float(state["d_cutoff"]))
        if state.get("x") is not None:
            restored._t = float(state["t"])
            restored._x = np.array(state["x"], dtype=np.float64)
            restored._dx = np.array(state["dx"], dtype=np.float64)
        return restored
