"""The ordered worker pool and the latest-wins slot: order, backpressure, failure and shutdown."""

from __future__ import annotations

import random
import threading
import time

import pytest

from app.pipeline.workers import LatestSlot, OrderedPool, PipelineError, PipelineStoppedError


def _jittery(seed: int):
    rng = random.Random(seed)
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            delay = rng.uniform(0, 0.004)
        time.sleep(delay)
        return item * 10

    return work


@pytest.mark.parametrize("workers", [1, 3, 8])
def test_results_come_back_in_submission_order_under_random_delays(workers: int) -> None:
    pool: OrderedPool[int, int] = OrderedPool(_jittery(workers), workers=workers, capacity=16)
    received: list[int] = []

    def consume() -> None:
        received.extend(pool.results())

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(300):
        pool.submit(i)
    pool.close()
    consumer.join(10)
    pool.join()
    assert received == [i * 10 for i in range(300)]
    assert not pool.alive


def test_backpressure_bounds_items_in_flight() -> None:
    """A slow consumer: the producer blocks instead of queueing; never more than capacity in flight."""
    pool: OrderedPool[int, int] = OrderedPool(lambda x: x, workers=4, capacity=6)
    submitted = 0

    def produce() -> None:
        nonlocal submitted
        for i in range(60):
            pool.submit(i)
            submitted += 1
        pool.close()

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.2)
    assert submitted <= 6  # nothing taken yet: the producer is held at capacity
    out = []
    for result in pool.results():
        out.append(result)
        time.sleep(0.002)
    producer.join(5)
    assert out == list(range(60))
    assert pool.high_water <= 6


def test_an_exception_in_a_worker_ends_the_pipeline_with_a_clear_error() -> None:
    def work(item: int) -> int:
        if item == 37:
            raise ValueError("bad pixels")
        time.sleep(0.001)
        return item

    pool: OrderedPool[int, int] = OrderedPool(
        work, workers=3, capacity=8, name="swap", describe=lambda i: f"frame {i}"
    )
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(1000):
                pool.submit(i)  # blocks at capacity; must be woken by the failure
            pool.close()
        except PipelineError as exc:
            errors.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    got: list[int] = []
    with pytest.raises(PipelineError, match="swap on frame 37 failed: bad pixels") as raised:
        for result in pool.results():
            got.append(result)
    assert isinstance(raised.value.__cause__, ValueError)
    producer.join(5)
    assert not producer.is_alive() and errors  # the blocked producer was released with the error
    pool.join(5)
    assert not pool.alive
    assert got == list(range(len(got))) and len(got) <= 37


def test_a_feeder_failure_stops_the_pool() -> None:
    pool: OrderedPool[int, int] = OrderedPool(lambda x: x, workers=2, capacity=4, name="swap")
    pool.submit(1)
    pool.fail(OSError("disk gone"), "decode at frame 5")
    with pytest.raises(PipelineError, match="decode at frame 5 failed: disk gone"):
        list(pool.results())
    pool.join(5)
    assert not pool.alive


def test_stop_releases_a_blocked_producer_and_consumer() -> None:
    release = threading.Event()
    pool: OrderedPool[int, int] = OrderedPool(lambda x: release.wait(5) and x, workers=1, capacity=2)
    outcome: list[str] = []

    def produce() -> None:
        try:
            for i in range(10):
                pool.submit(i)
        except PipelineStoppedError:
            outcome.append("stopped")

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.1)
    pool.stop()
    release.set()
    producer.join(5)
    assert outcome == ["stopped"]
    with pytest.raises(PipelineStoppedError):
        list(pool.results())
    pool.join(5)
    assert not pool.alive


def test_a_failing_worker_context_is_reported() -> None:
    def context(index: int):
        raise RuntimeError("no CUDA stream")

    pool: OrderedPool[int, int] = OrderedPool(lambda x: x, workers=2, capacity=2, context=context)
    with pytest.raises(PipelineError, match="setup failed: no CUDA stream"):
        pool.submit(1)
        list(pool.results())
    pool.join(5)


def test_latest_slot_keeps_only_the_newest_item() -> None:
    slot: LatestSlot[int] = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.take(0.1) == 4
    assert slot.dropped == 4 and slot.delivered == 1
    assert slot.take(0.05) is None  # empty: times out
    slot.close()
    assert slot.take() is None  # closed: returns at once


def test_latest_slot_wakes_a_waiting_taker() -> None:
    slot: LatestSlot[str] = LatestSlot()
    got: list[str | None] = []
    taker = threading.Thread(target=lambda: got.append(slot.take(5)))
    taker.start()
    time.sleep(0.05)
    slot.put("frame")
    taker.join(5)
    assert got == ["frame"]


def _feed(pool: OrderedPool[int, int], items: int, pause: float) -> threading.Thread:
    def produce() -> None:
        for item in range(items):
            time.sleep(pause)
            pool.submit(item)
        pool.close()

    thread = threading.Thread(target=produce)
    thread.start()
    return thread


def test_waits_say_which_side_is_behind() -> None:
    """Slow workers: the producer and the consumer wait on them, the workers never wait for items.
    A slow producer: the workers wait for it."""

    def slow(item: int) -> int:
        time.sleep(0.05)
        return item

    with OrderedPool(slow, workers=1, capacity=1, name="slow-workers") as pool:
        producer = _feed(pool, 8, 0.0)
        assert list(pool.results()) == list(range(8))
        producer.join()
        behind_workers = pool.waits()
    assert behind_workers.producer_s > 0.2  # seven submits waited ~50 ms each for the slot
    assert behind_workers.consumer_s > 0.2
    assert behind_workers.worker_idle_s < 0.1

    with OrderedPool(lambda item: item, workers=2, capacity=4, name="slow-producer") as pool:
        producer = _feed(pool, 6, 0.05)
        assert list(pool.results()) == list(range(6))
        producer.join()
        behind_producer = pool.waits()
    assert behind_producer.worker_idle_s > 0.2
    assert behind_producer.producer_s < 0.1
