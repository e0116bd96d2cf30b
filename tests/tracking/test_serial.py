"""Tracker state bytes: exact floats and arrays, no pickle, foreign bytes refused."""

from __future__ import annotations

import numpy as np
import pytest

from app.tracking.serial import StateError, pack, unpack


def test_a_tree_round_trips_exactly() -> None:
    rng = np.random.default_rng(0)
    tree = {
        "floats": [0.1, 1 / 3, float("inf"), -0.0, 1e-300],
        "ints": 2**40,
        "text": "ünïcode",
        "none": None,
        "flag": True,
        "arrays": [rng.random((5, 2)).astype(np.float32), rng.integers(0, 255, (4, 6), dtype=np.uint8)],
        "nested": {"scalar": np.float64(2.5), "tuple": (1, 2)},
    }
    back = unpack(pack(tree))
    assert back["floats"] == tree["floats"] and back["ints"] == 2**40 and back["text"] == "ünïcode"
    assert back["none"] is None and back["flag"] is True
    for mine, theirs in zip(tree["arrays"], back["arrays"], strict=True):  # type: ignore[call-overload]
        assert theirs.dtype == mine.dtype and np.array_equal(theirs, mine)
    assert back["nested"] == {"scalar": 2.5, "tuple": [1, 2]}


def test_foreign_or_unstorable_things_are_refused() -> None:
    with pytest.raises(StateError, match="wrong header"):
        unpack(b"PK\x03\x04 a zip")
    with pytest.raises(StateError, match="cannot store"):
        pack({"object": object()})
    data = pack({"a": np.zeros(3)})
    with pytest.raises(StateError, match="cannot be read"):
        unpack(data[:-10])
