"""Resumable video exports: encode in independent segments, several at once, and join them by stream
copy at the end.

A long export killed part-way (SIGKILL, a crash, a power cut) resumes where it stopped and ends with
the same frames as an export that never stopped. `SegmentedVideoWriter` encodes every
`segment_frames` frames with a fresh encoder into a segment of its own, so each segment is a
complete, independently decodable file starting with a keyframe (a closed GOP by construction), and
none depends on another. A segment is flushed to disk and renamed into place before the manifest
lists it, so a listed segment is always whole; the manifest is replaced atomically. Resuming keeps
the listed segments that still match their size and hash, drops the rest, and asks the caller
(`resume_point()`) for the first frame of the next segment. `finish()` joins the segments without
re-encoding (app.media.concat), adds the source's audio and the synthetic-media label, and renames
the result into place; only then is the work folder removed.

Off the caller's thread (app.media.segment_encoder): `write()` hands the frame to its segment's
encoder, which runs on a thread of its own, and returns; up to `jobs` segments encode at once (default:
one a core, at most MAX_JOBS), each with `threads` x264 threads (default: one a core, see
`encoder_threads`), so that one segment alone uses the whole machine and several share it. The caller
blocks only when `jobs`
segments are in flight or the frames waiting for them reach their bound (a whole segment per extra job,
at most `buffer_mb`). Segments are listed strictly in order, each by its own thread once it and every
earlier one are on disk, so a kill at any moment keeps only whole, listed segments; one that finished
early and waits for an earlier one is not listed, and a resume deletes it. An error on an encoder
thread is raised by the caller's next `write()` or `finish()`. `jobs=1` encodes one segment at a time
(still on its own thread); the bytes are the same for any `jobs`.

Work folder `<output>.parts/` (beside the output, so the final rename stays on one filesystem):
    manifest.json           fingerprint, settings (preset included), encoder and threads, listed segments
    segment-00000.mp4       video only; MP4 keeps pts and dts exactly at any time base
    segment-00000.state     the caller's bytes saved with that segment (optional)
    .segment-00001.<token>.partial.mp4   a segment being encoded (gone on resume)
    segment-00002.mp4       finished but not listed yet: segment 1 is still encoding (gone on resume)
    joined.partial.<ext>    the joined output while `finish()` runs (gone on resume)

Same frames on resume: a redone segment must encode exactly as it would have the first time, so
segments use VideoWriter's reproducible mode (pinned thread count, x264 without MB-tree) with the
thread count chosen when the export started (kept in the manifest, so a resume on another machine, or
with another `jobs`, encodes alike); each segment's bytes depend on its frames, the settings and that
count only, never on what encodes beside it. NVENC is used when it was asked for and opens (one
segment at a time: it is fast alone, and consumer GPUs ration sessions), but its output is not
promised to be reproducible. The caller's own state (tracker, stabiliser) travels with the frame that
ends a segment (`write(..., state=...)`), so a resumed run can restore it (`resume_state()`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import torch

from app.core.priority import built_lower_priority
from app.media.atomic import check_folder
from app.media.concat import join_segments
from app.media.durable import fsync_file, fsync_folder
from app.media.errors import MediaWriteError
from app.media.i420 import I420
from app.media.labels import SyntheticLabel
from app.media.segment_encoder import EncoderCrew, SegmentEncoder, SegmentEnd
from app.media.segment_work import MAX_THREADS, WorkFolder, segment_name, work_folder
from app.media.video_writer import (
    ENCODERS,
    VideoCodec,
    VideoWriter,
    check_frame,
    check_settings,
    choose_encoder,
)

__all__ = ["DEFAULT_SEGMENT_FRAMES", "SegmentedVideoWriter", "default_jobs", "encoder_threads", "work_folder"]

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_FRAMES = 120
MAX_JOBS = 4  # segments encoding at once by default, each with a thread a core (encoder_threads)
DEFAULT_BUFFER_MB = 1024  # frames waiting for the encoders, at most
ENCODER_NICE_STEPS = 10  # x264's threads run this much nicer than the export's (0: as nice as they are)
SERIAL_QUEUE_FRAMES = 8  # one segment at a time needs only a short queue to keep its encoder fed


def default_jobs(encoder: str, cores: int | None = None) -> int:
    """Segments to encode at once: one a core up to MAX_JOBS. Several segments in flight keep the cores
    busy across each one's start and flush, and wherever the frames run ahead of the encoders (on 2
    cores, 720p veryfast: 2 segments of 1 thread 1.5-1.8x as fast as 1 of 2 threads). One with NVENC,
    which is fast alone and whose sessions consumer GPUs ration."""
    if encoder.endswith("_nvenc"):
        return 1
    return max(1, min(MAX_JOBS, cores or os.cpu_count() or 1))


def encoder_threads(cores: int | None = None) -> int:
    """x264 threads for each segment of new work: one a core (at most MAX_THREADS), whatever `jobs` is.
    The count is pinned for the whole export (bytes depend on it), so it cannot follow how many segments
    happen to be encoding; and often only one is: a clip shorter than a few segments, or a frame buffer
    that holds about one 1080p segment. Alone, a segment then gets every core, and several share them
    (H100 host, 16 cores, 1080p veryfast, 300 frames in segments of 240: 91 fps with 4 threads each,
    167 fps with 16)."""
    return max(1, min(MAX_THREADS, cores or os.cpu_count() or 1))


class SegmentedVideoWriter:
    """Encode uint8 [H, W, 3] RGB frames into `path`, resumably; use as a context manager (a clean
    exit finishes, an exception aborts and keeps the work) or call `finish()` / `abort()`.

    `fingerprint` is the caller's hash of the inputs and settings: work left by an export with another
    fingerprint is thrown away. Frame indices here count the frames of this output from 0.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: Fraction,
        time_base: Fraction | None = None,
        codec: VideoCodec = "h264",
        crf: int = 18,
        audio_from: Path | None = None,
        label: SyntheticLabel | None = None,
        hardware: bool = True,
        preset: str | None = None,
        *,
        fingerprint: str,
        segment_frames: int = DEFAULT_SEGMENT_FRAMES,
        jobs: int | None = None,  # segments encoding at once; None: default_jobs
        threads: int | None = None,  # each segment's encoder threads, for new work; None: encoder_threads
        buffer_mb: int = DEFAULT_BUFFER_MB,
    ) -> None:
        check_settings(path, width, height, fps, time_base, crf)
        if codec not in ENCODERS:
            raise MediaWriteError(f"Unsupported video codec '{codec}' (supported: {', '.join(ENCODERS)})")
        if segment_frames <= 0:
            raise MediaWriteError(f"Cannot write {path}: segment_frames must be > 0, got {segment_frames}")
        if (jobs is not None and jobs <= 0) or (threads is not None and threads <= 0) or buffer_mb <= 0:
            raise MediaWriteError(
                f"Cannot write {path}: jobs, threads and buffer_mb must be > 0, got {jobs}, {threads}, "
                f"{buffer_mb}"
            )
        check_folder(path)
        self.path, self.width, self.height = path, width, height
        self.fps = Fraction(fps)
        self.time_base = Fraction(time_base) if time_base is not None else 1 / self.fps
        self.codec, self.crf, self.preset = codec, crf, preset
        self.audio_from, self.label = audio_from, label
        self.segment_frames = segment_frames
        self.work = WorkFolder(path, segment_frames)
        self.work_dir = self.work.path
        self.encoder_name, self.fallback_reason = choose_encoder(codec, hardware)
        settings: dict[str, str | int] = {
            "width": width,
            "height": height,
            "fps": str(self.fps),
            "time_base": str(self.time_base),
            "codec": codec,
            "crf": crf,
            "preset": preset or "",
            "segment_frames": segment_frames,
        }
        new_threads = threads or encoder_threads()
        self._manifest = self.work.open(fingerprint, settings, self.encoder_name, new_threads)
        if self._manifest.encoder != self.encoder_name:
            self.fallback_reason = f"the export was started with {self._manifest.encoder}"
            self.encoder_name = self._manifest.encoder
        self.threads = self._manifest.threads  # kept from the start: a resume encodes alike anywhere
        self.jobs = jobs or default_jobs(self.encoder_name)
        done = self._manifest.segments
        self._resume_point = sum(record.frames for record in done)
        self._resume_state = self.work.last_state()
        self.frames_written = self._resume_point
        self._last_pts: int | None = done[-1].last_pts if done else None
        self._resume_pts = self._last_pts
        self._ended = bool(done) and done[-1].frames < segment_frames  # a short last segment: all written
        # One segment at a time needs a short queue; several need the caller to run ahead of the oldest
        # by up to a segment per extra job while the others encode (memory: buffer_mb at most).
        queue_frames = SERIAL_QUEUE_FRAMES + (self.jobs - 1) * segment_frames
        self._crew = EncoderCrew(self.jobs, queue_frames, buffer_mb << 20, len(done), self._list)
        self._segment: SegmentEncoder | None = None
        self._segment_index = len(done)
        self._segment_first_pts = 0
        self._segment_count = 0
        self._state: bytes | None = None
        self._closed = False
        if done:
            log.info(
                "Resuming %s at frame %d (%d segments kept in %s)",
                path,
                self._resume_point,
                len(done),
                self.work_dir,
            )

    # ---- resuming ----------------------------------------------------------------------------------

    def resume_point(self) -> int:
        """The first frame the caller must produce (0 for a fresh export): seek the source there."""
        return self._resume_point

    def resume_pts(self) -> int | None:
        """The pts of the last frame kept (None for a fresh export). Seeking by index is approximate
        with a variable frame rate: a caller can check that its first frame comes after this."""
        return self._resume_pts

    def resume_state(self) -> bytes | None:
        """The caller's state saved with the last completed segment (None: fresh, or none was given)."""
        return self._resume_state

    def ends_segment(self, index: int) -> bool:
        """Whether frame `index` is the last of a segment: the frame whose `state` is kept."""
        return (index + 1) % self.segment_frames == 0

    # ---- writing -----------------------------------------------------------------------------------

    def write(self, image: torch.Tensor | I420, pts: int | None = None, state: bytes | None = None) -> None:
        """Hand one frame to its segment's encoder (any device; it is copied to the host here). It is
        encoded later, on another thread: do not change it after this call. `pts` (in `time_base`) must
        increase, across a resume too; without it frames are spaced 1/fps apart. `state` is the caller's
        state after this frame: it is kept when this frame ends a segment (see `ends_segment`). Blocks
        while the encoders are behind; raises the error of an encoder thread that failed."""
        if self._closed:
            raise MediaWriteError(f"Cannot write to {self.path}: the writer is closed")
        if self._ended:
            raise MediaWriteError(
                f"Cannot write to {self.path}: this export already ended at frame {self.frames_written}"
            )
        self._crew.check()
        check_frame(self.path, image, self.width, self.height)
        pts = self._next_pts(pts)
        host = image.cpu()  # on the caller's thread and CUDA stream; a no-op for host frames
        if self._segment is None:
            self._segment = self._crew.start(self._segment_index, self._open_segment)
            self._segment_first_pts, self._segment_count = pts, 0
        self._crew.put(self._segment, host, pts)
        self._last_pts, self._state = pts, state
        self._segment_count += 1
        self.frames_written += 1
        if self._segment_count == self.segment_frames:
            self._complete_segment()

    def _next_pts(self, pts: int | None) -> int:
        if pts is None:
            step = max(1, round(1 / self.fps / self.time_base))
            return 0 if self._last_pts is None else self._last_pts + step
        if self._last_pts is not None and pts <= self._last_pts:
            hint = (
                f" (resumed at frame {self._resume_point}: was the source seeked there?)"
                if self._resume_point
                else ""
            )
            raise MediaWriteError(
                f"Cannot write {self.path}: frame timestamps must increase "
                f"({pts} after {self._last_pts}){hint}"
            )
        return pts

    def _open_segment(self) -> VideoWriter:
        index = self._segment_index
        # x264 starts its threads as it opens: made lower-priority, they take the cores the export's own
        # threads leave, and never keep one of those waiting (app.core.priority).
        writer = built_lower_priority(
            lambda: VideoWriter(
                self.work_dir / segment_name(index),
                self.width,
                self.height,
                self.fps,
                self.time_base,
                self.codec,
                self.crf,
                hardware=self._manifest.encoder.endswith("_nvenc"),
                preset=self.preset,
                threads=self.threads,
                reproducible=True,
                fsync=True,
            ),
            ENCODER_NICE_STEPS,
        )
        if writer.encoder_name != self._manifest.encoder:
            if index > 0:  # segments from two encoders cannot be joined by stream copy
                writer.abort()
                raise MediaWriteError(
                    f"Cannot continue {self.path}: it was started with {self._manifest.encoder}, which "
                    f"failed to start now ({writer.fallback_reason}); remove {self.work_dir} to start over"
                )
            self._manifest.encoder = self.encoder_name = writer.encoder_name
            self.fallback_reason = writer.fallback_reason
            self.work.save()
        return writer

    def _complete_segment(self) -> None:
        """No more frames for this segment: its thread closes it (flushed and renamed by VideoWriter) and,
        in turn, lists it with the caller's state (`_list`)."""
        if self._segment is None:
            return
        last_pts = self._segment_first_pts if self._last_pts is None else self._last_pts
        end = SegmentEnd(self._segment_count, self._segment_first_pts, last_pts, self._state)
        self._crew.end(self._segment, end)
        self._segment = None
        self._segment_index += 1

    def _list(self, segment: Path, end: SegmentEnd) -> None:
        """On the segment's thread, once every earlier segment is listed: save the state beside the
        segment, and only then list both in the manifest."""
        self.work.add(segment, end.frames, end.first_pts, end.last_pts, end.state)

    # ---- finishing ---------------------------------------------------------------------------------

    def finish(self, progress: Callable[[int, int], None] | None = None) -> Path:
        """Complete the last segment, join all of them with the audio and label into a partial file,
        rename it into place, then remove the work folder. `progress(joined, total)` is called after
        each segment is joined (an exception from it stops the join and keeps the work)."""
        if self._closed:
            raise MediaWriteError(f"Cannot finish {self.path}: the writer is closed")
        try:
            self._complete_segment()
            self._crew.drain()  # every segment encoded and listed, every thread joined
        except BaseException:
            self.abort()
            raise
        self._closed = True
        segments = self._manifest.segments
        if not segments:
            self.work.remove()
            raise MediaWriteError(f"Cannot write {self.path}: no frames were written")
        joined = self.work_dir / f"joined.partial{self.path.suffix}"
        try:
            join_segments(
                [self.work_dir / record.file for record in segments],
                joined,
                start_s=float(segments[0].first_pts * self.time_base),
                end_s=float(segments[-1].last_pts * self.time_base + 1 / self.fps),
                audio_from=self.audio_from,
                label=self.label,
                progress=progress,
            )
            fsync_file(joined)
            joined.replace(self.path)
            fsync_folder(self.path.parent)
        except OSError as exc:
            joined.unlink(missing_ok=True)
            raise MediaWriteError(f"Cannot move the finished {self.path.name} into place: {exc}") from exc
        except BaseException:
            joined.unlink(missing_ok=True)
            raise
        self.work.remove()
        log.info(
            "Wrote %s: %d frames in %d segments with %s",
            self.path,
            self.frames_written,
            len(segments),
            self.encoder_name,
        )
        return self.path

    def abort(self) -> None:
        """Stop without an output file; the segments whose frames were all written are finished and stay
        in the work folder for a resume, the one being filled is dropped; every thread is joined."""
        if self._closed:
            return
        self._closed = True
        self._segment = None
        self._crew.stop()
        log.info(
            "Stopped %s after %d frames; %s keeps the work to resume",
            self.path,
            self.frames_written,
            self.work_dir,
        )

    def __enter__(self) -> SegmentedVideoWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if error is not None:
            self.abort()
        else:
            self.finish()
