"""Resumable exports: killed at random points (SIGKILL, in a real process) and resumed, an export ends
with the same frames as one that never stopped, whether its segments encode one at a time or several at
once; damaged work is redone, other work is started over, and the output path only ever holds a
finished file. Parallel encoding writes the bytes serial encoding writes, and its threads stop."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest
import torch

from app.core.priority import thread_nice
from app.media.errors import MediaWriteError
from app.media.labels import read_label
from app.media.segment_work import MAX_THREADS
from app.media.segments import SegmentedVideoWriter, encoder_threads, work_folder
from app.media.video import VideoWriter, open_video
from app.media.video_writer import VideoCodec
from tests.support.media import make_clip
from tests.support.segmented_export import DIE_IN_JOIN, LABEL, SEGMENT_FRAMES, export, open_writer

REPO_ROOT = Path(__file__).resolve().parents[2]
FRAMES = 75  # the clip fixture: 3 s at 25 fps, so 7 full segments of 10 and one of 5


def _decode(path: Path) -> tuple[list[torch.Tensor], list[float]]:
    with open_video(path) as video:
        frames = list(video.frames())
    return [frame.image for frame in frames], [frame.time_s for frame in frames]


@pytest.fixture(scope="module")
def reference(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The export run once without interruption (in this process: the killed ones run in others)."""
    return export(clip, tmp_path_factory.mktemp("reference") / "out.mp4").path


def _assert_same_frames(output: Path, reference: Path) -> list[float]:
    """The frames are those of the uninterrupted export; their times are returned."""
    frames, times = _decode(output)
    expected, expected_times = _decode(reference)
    assert len(frames) == len(expected) == FRAMES
    different = [i for i, (a, b) in enumerate(zip(frames, expected, strict=True)) if not torch.equal(a, b)]
    assert different == [], f"frames {different} differ from the uninterrupted export"
    assert times == expected_times
    return times


def _assert_same_export(output: Path, reference: Path, clip: Path) -> None:
    times = _assert_same_frames(output, reference)
    _, source_times = _decode(clip)
    assert times == source_times  # the source's timing, untouched by the seams
    with open_video(output) as video:
        assert video.has_audio and video.fps == 25 and video.duration_s == pytest.approx(3.0, abs=0.04)
    with av.open(str(output)) as container:
        audio = container.streams.audio[0]
        assert audio.duration is not None and audio.time_base is not None
        assert float(audio.duration * audio.time_base) == pytest.approx(3.0, abs=0.05)
    assert read_label(output) == LABEL
    assert not work_folder(output).exists()
    assert [p.name for p in output.parent.iterdir() if ".partial" in p.name] == []
    # The bonus: x264 in reproducible mode gives the same bytes, so the files are identical too.
    assert hashlib.sha256(output.read_bytes()).digest() == hashlib.sha256(reference.read_bytes()).digest()


def _encoder_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("encode-")]


def _listed(work: Path) -> list[str]:
    """The segments the manifest lists (none while it is missing or being replaced)."""
    try:
        return [record["file"] for record in json.loads((work / "manifest.json").read_text())["segments"]]
    except (OSError, ValueError, KeyError):
        return []


def _start(
    clip: Path, output: Path, sleep_s: float = 0.0, jobs: int = 1, **env: str
) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.support.segmented_export", str(clip), str(output)]
    return subprocess.Popen(
        [*command, "--sleep", str(sleep_s), "--jobs", str(jobs)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def _ready(process: subprocess.Popen[str]) -> int:
    """The resume point the process reported once its writer was open."""
    assert process.stdout is not None
    line = process.stdout.readline().split()
    assert line[:1] == ["ready"], f"the export script said {line} (exit {process.poll()})"
    return int(line[1])


def _run_to_the_end(clip: Path, output: Path, jobs: int = 1) -> int:
    process = _start(clip, output, jobs=jobs)
    start = _ready(process)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and out.split()[-1:] == ["done"]
    return start


def _kill_after(process: subprocess.Popen[str], index: int, delay_s: float) -> None:
    """SIGKILL the export `delay_s` after it has handed over frame `index` (or when it ends)."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.split() in (["wrote", str(index)], ["done"]):
            break
    time.sleep(delay_s)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


@pytest.mark.parametrize(("seed", "jobs"), [(7, 1), (2024, 3)])
def test_an_export_killed_at_random_points_resumes_to_the_same_frames(
    clip: Path, reference: Path, tmp_path: Path, seed: int, jobs: int
) -> None:
    rng = random.Random(seed)
    output = tmp_path / "out.mp4"
    starts = []
    for low in (12, 0):  # the first kill after a segment or more, so the second run resumes
        process = _start(clip, output, sleep_s=0.01, jobs=jobs)
        starts.append(_ready(process))
        # Killed near a random frame, at a random moment of its encoding, a segment's flush and
        # rename, the manifest update, or (after the last frame) the join.
        _kill_after(process, rng.randint(max(low, starts[-1]), FRAMES - 1), rng.uniform(0, 0.03))
        if process.returncode == 0:  # it finished before the kill landed
            break
        assert process.returncode == -signal.SIGKILL
        if output.exists():  # killed after the rename, while the work folder was being removed
            _assert_same_frames(output, reference)
    else:
        starts.append(_run_to_the_end(clip, output, jobs))
    assert starts == sorted(starts) and starts[1] > 0, f"resume points {starts}: nothing was resumed"
    assert all(start % SEGMENT_FRAMES == 0 for start in starts)
    _assert_same_export(output, reference, clip)


def test_a_kill_with_several_segments_in_flight_keeps_only_the_listed_ones(
    clip: Path, reference: Path, tmp_path: Path
) -> None:
    """Killed while segments after the last listed one are still encoding (or done but waiting for an
    earlier one): only the listed prefix counts, and the rest is encoded again."""
    output = tmp_path / "out.mp4"
    work = work_folder(output)
    process = _start(clip, output, jobs=3)
    assert _ready(process) == 0
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if _listed(work) and len(list(work.glob(".segment-*.partial.mp4"))) >= 2:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, "never caught two segments encoding at once"
    listed = _listed(work)
    assert listed == [f"segment-{i:05d}.mp4" for i in range(len(listed))]  # a whole prefix, in order
    unlisted = [p.name for p in work.glob("*segment-*.mp4") if p.name not in listed]
    assert unlisted, "the kill left no segment in flight"
    writer = open_writer(clip, output)
    assert writer.resume_point() == len(listed) * SEGMENT_FRAMES
    assert sorted(p.name for p in work.glob("*.mp4")) == listed  # the unlisted ones are gone
    writer.abort()
    assert _run_to_the_end(clip, output, jobs=3) == len(listed) * SEGMENT_FRAMES
    _assert_same_export(output, reference, clip)


def test_a_kill_while_joining_leaves_no_output_and_a_rerun_only_joins(
    clip: Path, reference: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.mp4"
    process = _start(clip, output, **{DIE_IN_JOIN: "3"})  # dies after joining 3 of 8 segments
    assert _ready(process) == 0
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not output.exists()
    work = work_folder(output)
    assert (work / "joined.partial.mp4").is_file()  # the half-joined file, inside the work folder
    assert len(json.loads((work / "manifest.json").read_text())["segments"]) == 8
    assert _run_to_the_end(clip, output) == FRAMES  # all frames were kept: only the join is redone
    _assert_same_export(output, reference, clip)


def test_a_failed_join_keeps_the_work_and_the_export_has_ended(clip: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    writer = open_writer(clip, output)
    for index in range(15):
        writer.write(torch.full((240, 320, 3), index * 16, dtype=torch.uint8))

    def cancel(joined: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        writer.finish(progress=cancel)
    assert not output.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4.parts"]
    assert not (work_folder(output) / "joined.partial.mp4").exists()
    again = open_writer(clip, output)
    assert again.resume_point() == 15
    with pytest.raises(MediaWriteError, match="already ended at frame 15"):
        again.write(torch.zeros((240, 320, 3), dtype=torch.uint8))
    assert again.finish() == output
    frames, times = _decode(output)
    assert [round(int(frame[0, 0, 0]) / 16) for frame in frames] == list(range(15))  # order kept
    assert times == pytest.approx([i / 25 for i in range(15)])


@pytest.mark.parametrize("damage", ["truncated", "one byte changed", "not in the manifest", "state file"])
def test_a_damaged_or_unlisted_segment_is_redone(
    clip: Path, reference: Path, tmp_path: Path, damage: str
) -> None:
    output = tmp_path / "out.mp4"
    export(clip, output, stop_after=35)  # segments 0-2 kept; the 4th was aborted half-way
    work = work_folder(output)
    assert sorted(p.name for p in work.glob("segment-*.mp4")) == [f"segment-0000{i}.mp4" for i in range(3)]
    segment = work / "segment-00002.mp4"
    if damage == "truncated":
        segment.write_bytes(segment.read_bytes()[: segment.stat().st_size // 2])
    elif damage == "one byte changed":
        data = bytearray(segment.read_bytes())
        data[len(data) // 2] ^= 0xFF
        segment.write_bytes(bytes(data))
    elif damage == "not in the manifest":  # killed after the rename, before the manifest said so
        manifest = json.loads((work / "manifest.json").read_text())
        manifest["segments"] = manifest["segments"][:2]
        (work / "manifest.json").write_text(json.dumps(manifest))
    else:
        (work / "segment-00002.state").write_bytes(b"12345")
    writer = open_writer(clip, output)
    assert writer.resume_point() == 20
    assert not segment.exists() and not (work / "segment-00002.state").exists()
    writer.abort()
    export(clip, output)
    _assert_same_export(output, reference, clip)


def test_another_fingerprint_starts_over(
    clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.media")
    output = tmp_path / "out.mp4"
    export(clip, output, stop_after=25, fingerprint="settings A")
    assert open_writer(clip, output, fingerprint="settings A").resume_point() == 20
    writer = open_writer(clip, output, fingerprint="settings B")
    assert writer.resume_point() == 0 and writer.resume_state() is None
    assert "fingerprint differs" in caplog.text
    assert [p.name for p in work_folder(output).iterdir()] == ["manifest.json"]


def test_resume_state_is_the_state_saved_with_the_last_segment(tmp_path: Path) -> None:
    output = tmp_path / "out.mkv"

    def writer() -> SegmentedVideoWriter:
        return SegmentedVideoWriter(
            output, 64, 48, Fraction(25), fingerprint="f", segment_frames=4, preset="ultrafast"
        )

    first = writer()
    assert first.resume_point() == 0 and first.resume_state() is None
    for index in range(10):
        state = f"after frame {index}".encode() if first.ends_segment(index) else None
        first.write(torch.zeros((48, 64, 3), dtype=torch.uint8), state=state)
    first.abort()
    second = writer()
    assert second.resume_point() == 8 and second.resume_state() == b"after frame 7"
    assert second.resume_pts() == 7  # no pts given: 1/fps apart in a 1/fps time base
    with pytest.raises(MediaWriteError, match=r"must increase \(0 after 7\) \(resumed at frame 8"):
        second.write(torch.zeros((48, 64, 3), dtype=torch.uint8), pts=0)
    second.abort()


@pytest.mark.parametrize("jobs", [1, 3])
def test_segments_are_whole_files_and_an_abort_leaves_no_output(
    clip: Path, tmp_path: Path, jobs: int
) -> None:
    """An abort keeps the segments whose frames were all written (still encoding, in parallel), drops
    the one being filled, and joins every encoder thread."""
    output = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="cancelled"), open_writer(clip, output, jobs=jobs) as writer:
        for index in range(25):
            writer.write(torch.full((240, 320, 3), index * 8, dtype=torch.uint8))
        raise RuntimeError("cancelled")
    assert _encoder_threads() == []
    work = work_folder(output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4.parts"]
    segments = ["segment-00000.mp4", "segment-00001.mp4"]
    assert sorted(p.name for p in work.iterdir()) == ["manifest.json", *segments]
    assert _listed(work) == segments
    for segment in segments:
        with open_video(work / segment) as video:
            assert len(list(video.frames())) == SEGMENT_FRAMES and not video.has_audio


def _noise(count: int, width: int = 160, height: int = 120) -> list[torch.Tensor]:
    """Frames x264 has to work at: gradients that move, with noise."""
    generator = torch.Generator().manual_seed(1)
    across = torch.arange(width, dtype=torch.uint8).expand(height, width)
    down = torch.arange(height, dtype=torch.uint8).unsqueeze(1).expand(height, width)
    return [
        torch.stack([across + 3 * i, down + 5 * i, across // 2 + down], 2)
        + torch.randint(0, 24, (height, width, 3), dtype=torch.uint8, generator=generator)
        for i in range(count)
    ]


def test_segments_encoded_in_parallel_give_the_bytes_of_serial_encoding(tmp_path: Path) -> None:
    """Each segment is an independent file with its own pinned x264 threads, so encoding several at
    once changes nothing in them, nor in the joined output."""
    frames = _noise(23)  # 4 segments of 5 and a short one of 3
    digests, most_threads = {}, {}
    for jobs in (1, 3):
        output = tmp_path / f"jobs{jobs}.mp4"
        writer = SegmentedVideoWriter(
            output, 160, 120, Fraction(25), hardware=False, fingerprint="f", segment_frames=5,
            jobs=jobs, threads=2,
        )  # fmt: skip
        most_threads[jobs] = 0
        for index, frame in enumerate(frames):
            writer.write(frame, pts=3 * index + index % 2, state=f"{index}".encode())
            most_threads[jobs] = max(most_threads[jobs], len(_encoder_threads()))
        writer.finish()
        digests[jobs] = hashlib.sha256(output.read_bytes()).hexdigest()
        assert len(_decode(output)[0]) == 23
    assert digests[1] == digests[3]
    assert most_threads[3] >= 2  # the writes ran ahead of x264: several segments encoded at once
    assert _encoder_threads() == []


def test_each_segment_gets_a_thread_a_core_whatever_the_jobs(tmp_path: Path) -> None:
    """Often only one segment encodes at a time (a short clip, a buffer of about one segment), so
    each one's pinned x264 threads are the machine's cores (capped), not the cores shared out by jobs."""
    assert (encoder_threads(2), encoder_threads(16), encoder_threads(64)) == (2, 16, MAX_THREADS)
    for jobs in (1, 4):
        writer = SegmentedVideoWriter(
            tmp_path / f"jobs{jobs}.mp4", 160, 120, Fraction(25), hardware=False, fingerprint="f", jobs=jobs
        )
        assert writer.threads == encoder_threads() == min(MAX_THREADS, os.cpu_count() or 1)
        writer.abort()


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values that threads inherit")
def test_x264s_threads_run_nicer_than_the_exports_own(tmp_path: Path) -> None:
    """x264 starts its threads as a segment opens: they inherit the opener's raised nice value, while
    the caller and the segment's Python thread (which takes the GIL) keep their priority."""

    def tasks() -> set[int]:
        return {int(name) for name in os.listdir("/proc/self/task")}

    def nice_of(tid: int) -> int | None:
        try:
            return thread_nice(tid)
        except OSError:  # a thread another library started and ended meanwhile
            return None

    frame = _noise(1)[0]  # first: torch may start its own threads for it
    base, before = thread_nice(), tasks()
    writer = SegmentedVideoWriter(
        tmp_path / "out.mp4", 160, 120, Fraction(25), hardware=False, fingerprint="f", segment_frames=5,
        jobs=1, threads=2,
    )  # fmt: skip
    try:
        writer.write(frame)  # opens the first segment
        python_threads = {thread.native_id: thread.name for thread in threading.enumerate()}
        native = tasks() - before - set(python_threads)  # x264's (and any a library started meanwhile)
        assert sum(nice_of(tid) == min(19, base + 10) for tid in native) >= 2  # x264 has 2 threads
        encoders = [tid for tid, name in python_threads.items() if name.startswith("encode-")]
        assert encoders and all(thread_nice(tid) == base for tid in encoders)
        assert thread_nice() == base
    finally:
        writer.finish()


def test_an_encoder_failing_on_its_thread_raises_in_write_and_leaves_no_thread(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    writer = SegmentedVideoWriter(
        output, 160, 120, Fraction(25), hardware=False, preset="ultrafast", fingerprint="f",
        segment_frames=5, jobs=3, threads=1,
    )  # fmt: skip
    work = work_folder(output)
    (work / "segment-00001.mp4").mkdir()  # segment 1 cannot be renamed into place: a real OSError
    frames = _noise(5)
    with pytest.raises(MediaWriteError, match=r"Cannot move the finished segment-00001\.mp4 into place"):
        for index in range(200):  # segment 1 fails long before these are written: write() raises
            writer.write(frames[index % 5])
    writer.abort()
    assert _encoder_threads() == []
    assert _listed(work) == ["segment-00000.mp4"]  # the one before the failure is kept, none after
    assert sorted(p.name for p in work.iterdir()) == [
        "manifest.json",
        "segment-00000.mp4",
        "segment-00001.mp4",
    ]
    with pytest.raises(MediaWriteError, match="closed"):
        writer.write(frames[0])


def test_another_x264_preset_starts_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Segments from two presets would join into one file of mixed quality: the preset is part of the
    manifest's settings, so work from another preset is not resumed."""
    caplog.set_level(logging.INFO, logger="app.media")
    output = tmp_path / "out.mp4"

    def writer(preset: str) -> SegmentedVideoWriter:
        return SegmentedVideoWriter(
            output, 160, 120, Fraction(25), hardware=False, preset=preset, fingerprint="f",
            segment_frames=5, jobs=2, threads=1,
        )  # fmt: skip

    first = writer("ultrafast")
    for frame in _noise(12):
        first.write(frame)
    first.abort()
    assert writer("ultrafast").resume_point() == 10
    again = writer("veryfast")
    assert again.resume_point() == 0 and "was encoded with other settings" in caplog.text
    again.abort()


@pytest.mark.parametrize(("codec", "suffix"), [("hevc", ".mp4"), ("h264", ".mkv")])
def test_other_codecs_and_containers(clip: Path, tmp_path: Path, codec: VideoCodec, suffix: str) -> None:
    output = tmp_path / f"out{suffix}"
    options = {"audio_from": clip, "label": LABEL, "hardware": False, "preset": "ultrafast"}
    with open_video(clip) as video:
        size, fps, time_base = (video.width, video.height), video.fps, video.time_base
        with SegmentedVideoWriter(
            output, *size, fps, time_base, codec, **options, fingerprint="f", segment_frames=10
        ) as writer:
            for frame in video.frames():
                if frame.index < 25:
                    writer.write(frame.image, frame.pts)
    with open_video(output) as result:
        assert result.codec == codec and result.has_audio
        assert len(list(result.frames())) == 25
    assert read_label(output) == LABEL and not work_folder(output).exists()


def test_audio_the_container_cannot_hold_is_transcoded_when_joining(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "pcm.mkv", seconds=1.0, audio_codec="pcm_u8")
    output = tmp_path / "out.mp4"
    with open_video(source) as video:
        size, fps, time_base = (video.width, video.height), video.fps, video.time_base
        with SegmentedVideoWriter(
            output, *size, fps, time_base, audio_from=source, preset="ultrafast", fingerprint="f"
        ) as writer:
            for frame in video.frames():
                writer.write(frame.image, frame.pts)
    with av.open(str(output)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac" and container.streams.video[0].frames == 25
        assert audio.duration is not None and audio.time_base is not None
        assert float(audio.duration * audio.time_base) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_reproducible_encoding_gives_the_same_bytes(tmp_path: Path, codec: VideoCodec) -> None:
    """What resuming relies on; the export tests above check it across processes for H.264."""
    noise = torch.Generator().manual_seed(0)
    frames = [torch.randint(0, 256, (48, 64, 3), dtype=torch.uint8, generator=noise) for _ in range(12)]
    digests = set()
    for run in range(2):
        target = tmp_path / f"{run}.mp4"
        with VideoWriter(
            target,
            64,
            48,
            Fraction(25),
            codec=codec,
            hardware=False,
            threads=2,
            reproducible=True,
        ) as writer:
            for frame in frames:
                writer.write(frame)
        digests.add(hashlib.sha256(target.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_refusals(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    with pytest.raises(MediaWriteError, match="no frames"):
        SegmentedVideoWriter(output, 64, 48, Fraction(25), fingerprint="f").finish()
    assert list(tmp_path.iterdir()) == []
    work_folder(output).mkdir()
    (work_folder(output) / "holiday.jpg").write_bytes(b"not ours")
    with pytest.raises(MediaWriteError, match=r"holds files Doppel did not write \(holiday.jpg\)"):
        SegmentedVideoWriter(output, 64, 48, Fraction(25), fingerprint="f")
    with pytest.raises(MediaWriteError, match="segment_frames must be > 0"):
        SegmentedVideoWriter(output, 64, 48, Fraction(25), fingerprint="f", segment_frames=0)
