import sys
import threading

from app.core.gil import pipeline_switch_interval


def test_the_interval_is_shortened_inside_and_restored_after() -> None:
    before = sys.getswitchinterval()
    with pipeline_switch_interval(0.0007):
        assert sys.getswitchinterval() == 0.0007
    assert sys.getswitchinterval() == before


def test_overlapping_users_restore_only_when_the_last_leaves() -> None:
    before = sys.getswitchinterval()
    first_in, second_out = threading.Event(), threading.Event()
    seen: list[float] = []

    def export() -> None:
        with pipeline_switch_interval(0.0007):
            first_in.set()
            second_out.wait(5)
            seen.append(sys.getswitchinterval())  # the other user has left: still short

    thread = threading.Thread(target=export)
    thread.start()
    first_in.wait(5)
    with pipeline_switch_interval(0.0007):
        pass
    second_out.set()
    thread.join(5)
    assert seen == [0.0007]
    assert sys.getswitchinterval() == before


def test_a_longer_interval_never_lengthens_the_current_one() -> None:
    before = sys.getswitchinterval()
    with pipeline_switch_interval(before * 10):
        assert sys.getswitchinterval() == before
