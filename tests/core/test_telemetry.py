from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from app.core import telemetry as telemetry_module
from app.core.settings import Settings, TelemetrySettings, load_settings, save_settings
from app.core.telemetry import Telemetry, configure_telemetry, get_telemetry, telemetry_path


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(autouse=True)
def _fresh_process_telemetry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOPPEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(telemetry_module, "_current", None)


def test_disabled_writes_nothing(tmp_path: Path) -> None:
    assert Settings().telemetry.enabled is False  # opt-in
    telemetry = get_telemetry()  # no settings file: defaults
    assert not telemetry.enabled
    telemetry.latency("detect", 3.0)
    telemetry.fallback("inswapper_128", "tensorrt", "cuda", "engine build failed")
    telemetry.tracker_loss(12, "flow")
    telemetry.job({"frames": 3})
    telemetry.close()
    assert not (tmp_path / "data").exists()


def test_enabled_writes_every_kind_as_jsonl() -> None:
    with Telemetry.from_settings(Settings(telemetry=TelemetrySettings(enabled=True))) as telemetry:
        assert telemetry.path == telemetry_path()
        telemetry.latency("detect", 3.5, frame=1)
        telemetry.fallback("inswapper_128", "tensorrt", "cuda", "engine build failed", phase="load")
        telemetry.tracker_loss(12, "csrt")
        telemetry.job({"frames": 3, "output": Path("out.mp4")})
    events = lines(telemetry_path())
    assert [e["kind"] for e in events] == ["latency", "fallback", "tracker_loss", "job"]
    assert events[0]["fields"] == {"stage": "detect", "ms": 3.5, "frame": 1}
    assert events[1]["fields"] == {
        "model": "inswapper_128",
        "source": "tensorrt",
        "target": "cuda",
        "reason": "engine build failed",
        "phase": "load",
    }
    assert events[2]["fields"] == {"frame": 12, "kind": "csrt"}
    assert events[3]["fields"] == {"frames": 3, "output": "out.mp4"}
    assert all(isinstance(e["time"], float) for e in events)


def test_rotates_at_the_bound_keeping_one_old_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    telemetry = Telemetry(path, max_bytes=2000)
    for index in range(200):
        telemetry.latency("swap", float(index))
    telemetry.close()
    old = path.with_name("t.jsonl.1")
    assert old.is_file()
    assert path.stat().st_size <= 2000 and old.stat().st_size <= 2000
    kept = [e["fields"]["ms"] for e in lines(old) + lines(path)]
    assert kept == [float(i) for i in range(200 - len(kept), 200)]  # newest kept, in order
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl", "t.jsonl.1"]


def test_concurrent_writers_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    telemetry = Telemetry(path)
    threads, per_thread = 8, 200
    barrier = threading.Barrier(threads)

    def work(index: int) -> None:
        barrier.wait()
        for n in range(per_thread):
            telemetry.event("latency", stage=f"worker{index}", n=n, pad="x" * 500)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    telemetry.close()
    events = lines(path)
    assert len(events) == threads * per_thread
    for index in range(threads):
        mine = [e["fields"]["n"] for e in events if e["fields"]["stage"] == f"worker{index}"]
        assert mine == list(range(per_thread))


def test_a_write_error_turns_telemetry_off_without_raising(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    telemetry = Telemetry(blocker / "t.jsonl")
    telemetry.latency("detect", 1.0)
    assert not telemetry.enabled
    telemetry.latency("detect", 1.0)  # still no error


def test_process_telemetry_follows_settings() -> None:
    settings = Settings(telemetry=TelemetrySettings(enabled=True, max_file_mb=1))
    save_settings(settings)
    assert load_settings().telemetry == settings.telemetry
    telemetry = get_telemetry()
    assert telemetry.enabled and telemetry.max_bytes == 1024 * 1024
    assert get_telemetry() is telemetry
    replaced = configure_telemetry(Settings())
    assert get_telemetry() is replaced and not replaced.enabled
