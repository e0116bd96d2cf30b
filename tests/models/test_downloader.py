"""The downloader against a real HTTP server on 127.0.0.1, with injected faults."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from app.core.errors import (
    DownloadError,
    HashMismatchError,
    InsecureUrlError,
    InsufficientDiskSpaceError,
    NetworkUnreachableError,
    UnverifiedModelError,
)
from app.models.download import DownloadOptions, Downloader
from app.models.events import DownloadEvent, EventKind
from app.models.store import ModelState, ModelStore
from tests.support.entries import blob, catalog_of, entry_for
from tests.support.http_server import FileServer

FAST = DownloadOptions(retries=2, backoff_s=0.01, timeout_s=2.0, chunk_bytes=16384, progress_interval_s=0)


def make(tmp_path: Path, *entries, options: DownloadOptions = FAST):
    events: list[DownloadEvent] = []
    lock = threading.Lock()

    def sink(event: DownloadEvent) -> None:
        with lock:
            events.append(event)

    store = ModelStore(tmp_path / "models", catalog_of(*entries))
    return Downloader(store, options, on_event=sink), store, events


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_downloads_verifies_and_installs(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(300_000)
    file_server.files["/m.onnx"] = data
    entry = entry_for("m", data, [file_server.url("m.onnx")])
    downloader, store, events = make(tmp_path, entry)

    path = downloader.download(entry)

    assert path.read_bytes() == data
    assert not store.part_path_for(entry).exists()
    assert store.status(entry).state is ModelState.PRESENT
    kinds = [e.kind for e in events]
    assert kinds[0] is EventKind.STARTED and kinds[-1] is EventKind.DONE
    assert EventKind.VERIFYING in kinds
    progress = [e.done for e in events if e.kind is EventKind.PROGRESS]
    assert progress == sorted(progress) and progress[-1] == len(data)


def test_cut_transfer_resumes_from_part_file(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(500_000, seed=1)
    file_server.files["/cut.onnx"] = data
    file_server.cut_once_after["/cut.onnx"] = 200_000
    entry = entry_for("cut", data, [file_server.url("cut.onnx")])

    # First run: no retries, so the cut ends the attempt and leaves the .part file behind.
    downloader, store, _ = make(tmp_path, entry, options=DownloadOptions(retries=0, timeout_s=2.0))
    result = downloader.download_all([entry])[0]
    assert result.status == "failed"
    part = store.part_path_for(entry)
    assert part.exists() and 0 < part.stat().st_size < len(data)
    assert not store.path_for(entry).exists(), "a partial download must never pass for complete"
    assert store.status(entry).state is ModelState.PARTIAL
    kept = part.stat().st_size

    # Second run resumes with a Range request from exactly what is on disk.
    downloader, store, events = make(tmp_path, entry)
    path = downloader.download(entry)
    assert path.read_bytes() == data
    assert file_server.hits("cut.onnx")[-1].range == f"bytes={kept}-"
    started = [e for e in events if e.kind is EventKind.STARTED]
    assert started[0].done == kept


def test_cut_transfer_is_retried_and_resumed_within_one_run(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(400_000, seed=2)
    file_server.files["/r.onnx"] = data
    file_server.cut_once_after["/r.onnx"] = 100_000
    entry = entry_for("r", data, [file_server.url("r.onnx")])
    downloader, _, events = make(tmp_path, entry)

    assert downloader.download(entry).read_bytes() == data
    assert any(e.kind is EventKind.RETRY for e in events)
    ranges = [h.range for h in file_server.hits("r.onnx")]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")


def test_wrong_hash_is_rejected_and_leaves_nothing(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(100_000, seed=3)
    file_server.files["/bad.onnx"] = blob(100_000, seed=4)  # same size, other bytes
    entry = entry_for("bad", data, [file_server.url("bad.onnx")])
    downloader, store, _ = make(tmp_path, entry)

    with pytest.raises(HashMismatchError, match="SHA-256"):
        downloader.download(entry)
    assert not store.path_for(entry).exists()
    assert not store.part_path_for(entry).exists()


def test_wrong_hash_on_primary_falls_back_to_good_mirror(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(50_000, seed=5)
    file_server.files["/tampered.onnx"] = blob(50_000, seed=6)
    file_server.files["/good.onnx"] = data
    entry = entry_for("fb", data, [file_server.url("tampered.onnx"), file_server.url("good.onnx")])
    downloader, _, _ = make(tmp_path, entry)
    assert downloader.download(entry).read_bytes() == data


def test_dead_primary_falls_back_to_mirror(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(80_000, seed=7)
    file_server.files["/mirror/m.onnx"] = data
    dead = f"http://127.0.0.1:{closed_port()}/m.onnx"
    entry = entry_for("mirror", data, [dead, file_server.url("mirror/m.onnx")])
    downloader, _, events = make(tmp_path, entry)

    assert downloader.download(entry).read_bytes() == data
    fallback = [e for e in events if e.kind is EventKind.FALLBACK]
    assert fallback and fallback[0].url == dead


def test_404_gives_a_clear_error(tmp_path: Path, file_server: FileServer) -> None:
    entry = entry_for("gone", b"x" * 64, [file_server.url("missing.onnx")])
    downloader, store, _ = make(tmp_path, entry)
    with pytest.raises(DownloadError, match=r"gone.*\n.*missing\.onnx: HTTP 404 Not Found"):
        downloader.download(entry)
    assert len(file_server.hits("missing.onnx")) == 1, "a 404 is final: no retries"
    assert not store.path_for(entry).exists()


def test_server_errors_are_retried(tmp_path: Path, file_server: FileServer) -> None:
    file_server.status["/busy.onnx"] = 503
    entry = entry_for("busy", b"y" * 64, [file_server.url("busy.onnx")])
    downloader, _, events = make(tmp_path, entry)
    with pytest.raises(DownloadError, match="HTTP 503.*gave up after 3 tries"):
        downloader.download(entry)
    assert len(file_server.hits("busy.onnx")) == 3
    assert sum(e.kind is EventKind.RETRY for e in events) == 2


def test_timeout_gives_a_clear_error(tmp_path: Path, file_server: FileServer) -> None:
    file_server.files["/slow.onnx"] = b"z" * 64
    file_server.stall_s["/slow.onnx"] = 1.5
    entry = entry_for("slow", b"z" * 64, [file_server.url("slow.onnx")])
    options = DownloadOptions(retries=0, timeout_s=0.3)
    downloader, _, _ = make(tmp_path, entry, options=options)
    with pytest.raises(DownloadError, match=r"timed out after 0\.3 s"):
        downloader.download(entry)


def test_unreachable_network_is_named(tmp_path: Path) -> None:
    urls = [f"http://127.0.0.1:{closed_port()}/a.onnx", f"http://127.0.0.1:{closed_port()}/b.onnx"]
    entry = entry_for("offline", b"q" * 64, urls)
    downloader, _, _ = make(tmp_path, entry, options=DownloadOptions(retries=1, backoff_s=0.01))
    with pytest.raises(NetworkUnreachableError, match="Cannot reach any server.*internet connection"):
        downloader.download(entry)


def test_a_host_that_does_not_resolve_or_refuses_fails_at_once_and_is_not_tried_again(
    tmp_path: Path, file_server: FileServer
) -> None:
    """Offline, retrying a name that does not resolve or a port that refuses only wastes the user's time:
    each such URL fails on its first try, and the run's later URLs on the same host are not tried."""
    data = blob(40_000, seed=9)
    file_server.files["/m.onnx"] = data
    nowhere, refused = "https://doppel-test.invalid/a.onnx", f"http://127.0.0.1:{closed_port()}/a.onnx"
    first = entry_for("first", data, [nowhere, refused, file_server.url("m.onnx")])
    second = entry_for("second", b"s" * 64, ["https://doppel-test.invalid/b.onnx", refused.replace("a.", "b.")])
    options = DownloadOptions(retries=4, backoff_s=5.0, timeout_s=2.0, progress_interval_s=0, parallel=1)
    downloader, _, events = make(tmp_path, first, second, options=options)

    assert downloader.download(first).read_bytes() == data  # from the third URL, with no backoff waited
    with pytest.raises(NetworkUnreachableError) as failure:
        downloader.download(second)
    assert not [e for e in events if e.kind is EventKind.RETRY]
    reasons = [e.message for e in events if e.kind is EventKind.FALLBACK and e.model_id == "first"]
    assert "doppel-test.invalid does not resolve" in reasons[0] and "refuses connections" in reasons[1]
    message = str(failure.value)
    assert "b.onnx: not tried: doppel-test.invalid does not resolve (found earlier in this run)" in message
    assert "refuses connections (found earlier in this run)" in message


def test_parallel_downloads_respect_the_limit(tmp_path: Path, file_server: FileServer) -> None:
    file_server.hold_s = 0.02  # slow streams so transfers overlap
    entries = []
    for i in range(5):
        data = blob(400_000, seed=10 + i)
        file_server.files[f"/p{i}.onnx"] = data
        entries.append(entry_for(f"p{i}", data, [file_server.url(f"p{i}.onnx")]))
    downloader, store, events = make(tmp_path, *entries, options=DownloadOptions(parallel=2, timeout_s=5))

    results = downloader.download_all(entries)

    assert [r.status for r in results] == ["downloaded"] * 5
    # Transfers in flight at once, as the client saw them (STARTED .. VERIFYING).
    active = peak = 0
    for event in events:
        active += {EventKind.STARTED: 1, EventKind.VERIFYING: -1}.get(event.kind, 0)
        peak = max(peak, active)
    assert peak == 2
    assert all(store.status(e).state is ModelState.PRESENT for e in entries)


def test_lack_of_disk_space_is_refused_before_any_transfer(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(1000, seed=20)
    file_server.files["/huge.onnx"] = data
    # The catalog claims an exabyte: no disk has that, so the real free-space check must refuse.
    entry = entry_for("huge", data, [file_server.url("huge.onnx")], size=2**60)
    downloader, _, _ = make(tmp_path, entry)
    with pytest.raises(InsufficientDiskSpaceError, match="Not enough disk space"):
        downloader.download_all([entry])
    assert file_server.requests == []


def test_present_file_is_skipped_without_network(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(10_000, seed=21)
    entry = entry_for("here", data, [file_server.url("here.onnx")])
    downloader, store, events = make(tmp_path, entry)
    store.root.mkdir(parents=True)
    store.path_for(entry).write_bytes(data)
    assert downloader.download_all([entry])[0].status == "present"
    assert file_server.requests == [] and events[-1].kind is EventKind.SKIPPED


def test_corrupt_file_is_replaced_by_verified_download(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(10_000, seed=22)
    file_server.files["/c.onnx"] = data
    entry = entry_for("c", data, [file_server.url("c.onnx")])
    downloader, store, _ = make(tmp_path, entry)
    store.root.mkdir(parents=True)
    store.path_for(entry).write_bytes(b"\0" * len(data))
    assert store.status(entry).state is ModelState.CORRUPT
    downloader.download(entry)
    assert store.status(entry, rehash=True).state is ModelState.PRESENT


def test_unverified_entry_needs_the_trust_flag(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(5_000, seed=23)
    file_server.files["/u.onnx"] = data
    entry = entry_for("u", data, [file_server.url("u.onnx")], verified=False)
    downloader, _, _ = make(tmp_path, entry)
    with pytest.raises(UnverifiedModelError, match="--trust-unverified"):
        downloader.download(entry)
    assert file_server.requests == []
    trusting, _, _ = make(tmp_path, entry, options=DownloadOptions(trust_unverified=True))
    assert trusting.download(entry).read_bytes() == data


def test_plain_http_is_refused_except_to_loopback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an HTTPS URL"):
        entry_for("insecure", b"a" * 64, ["http://example.com/model.onnx"])
    entry = entry_for("ok", b"a" * 64, ["https://example.com/model.onnx"])
    # A redirect or a hand-edited entry can still smuggle one in: the downloader checks again.
    smuggled = entry.model_copy(update={"urls": ("http://example.com/model.onnx",)})
    downloader, _, _ = make(tmp_path, smuggled)
    with pytest.raises(InsecureUrlError):
        downloader.download(smuggled)


def test_cancel_keeps_the_part_file_for_resume(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(2_000_000, seed=24)
    file_server.files["/big.onnx"] = data
    file_server.hold_s = 0.01
    entry = entry_for("big", data, [file_server.url("big.onnx")])
    downloader, store, events = make(tmp_path, entry)

    def cancel_on_progress(event: DownloadEvent) -> None:
        events.append(event)
        if event.kind is EventKind.PROGRESS and event.done > 300_000:
            downloader.cancel()

    downloader.on_event = cancel_on_progress
    result = downloader.download_all([entry])[0]

    assert result.status == "cancelled"
    assert events[-1].kind is EventKind.CANCELLED
    assert not store.path_for(entry).exists()
    kept = store.part_path_for(entry).stat().st_size
    assert 300_000 < kept < len(data)
    resumed, _, _ = make(tmp_path, entry)
    assert resumed.download(entry).read_bytes() == data
    assert file_server.hits("big.onnx")[-1].range == f"bytes={kept}-"


def test_server_ignoring_range_restarts_cleanly(tmp_path: Path, file_server: FileServer) -> None:
    data = blob(200_000, seed=25)
    file_server.files["/nr.onnx"] = data
    file_server.ignore_range.add("/nr.onnx")
    entry = entry_for("nr", data, [file_server.url("nr.onnx")])
    _, store, _ = make(tmp_path, entry)
    store.root.mkdir(parents=True)
    store.part_path_for(entry).write_bytes(data[:50_000])
    downloader, _, _ = make(tmp_path, entry)
    assert downloader.download(entry).read_bytes() == data
