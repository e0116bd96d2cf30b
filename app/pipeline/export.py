"""The video export engine: decode, analyse, swap and encode at once, on separate threads.

    FrameQueue (decode thread, bounded, NVDEC when present)
      → feeder thread: FrameAnalyser, in frame order (tracking and stabilisation carry state)
      → OrderedPool: N swap workers (each on its own CUDA stream), results back in frame order
      → this thread: frames in order to the encoders, into checkpointed segments (SegmentedVideoWriter:
        several segments encode at once, each on a thread of its own)

Every hand-off is bounded, so memory stays flat however fast or slow each stage is; the first error in
any stage stops them all and is raised here (never a hang). A killed export keeps its finished
segments and the analyser's state at each segment's end; running the same job again resumes from the
first unfinished segment and produces the frames an uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from app.core.errors import DoppelError
from app.core.gil import pipeline_switch_interval
from app.core.milestones import mark
from app.faces.types import Face
from app.inference.streams import on_analysis_stream
from app.media.frame_queue import FrameQueue, QueuedFrame
from app.media.i420 import I420, rgb_to_i420
from app.media.segments import SegmentedVideoWriter
from app.media.video import VideoSource, open_video
from app.pipeline.frame_swap import FrameSwapper
from app.pipeline.job_state import (
    CONTENT_CHECK_SECONDS,
    JobCancelledError,
    JobReport,
    JobState,
    Stage,
    SwapJob,
)
from app.pipeline.sources import NoFaceError
from app.pipeline.workers import OrderedPool, PipelineError
from app.processing.content import ContentBlockedError
from app.tracking.face_tracker import TrackEvents

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (frames done, frames expected)


@dataclass
class _Analysed:
    index: int  # in the output: counted here, since a timestamp seek leaves the source's index estimated
    frame: QueuedFrame
    faces: list[Face]
    check_content: bool
    checkpoint: bytes | None  # the analyser's state after this frame, at a segment's end
    ready: torch.cuda.Event | None  # the analysis stream's work on the frame is done
    swapper: FrameSwapper  # of the stage (marker) the frame belongs to


@dataclass
class _Rendered:
    index: int
    pts: int | None
    image: torch.Tensor | I420  # on the host once `landed` has happened
    faces: int
    checkpoint: bytes | None
    landed: torch.cuda.Event | None = None  # the download into `image` (None: already there)


def export_video(
    state: JobState,
    report: JobReport,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> None:
    job, options = state.job, state.job.engine
    hardware = options.hardware_decode and state.device.type == "cuda"
    with pipeline_switch_interval(), open_video(job.target, hardware=hardware, device=state.device) as source:
        report.decoder = source.decoder
        writer = SegmentedVideoWriter(
            job.output,
            source.width,
            source.height,
            source.fps,
            source.time_base,
            job.codec,
            job.crf,
            audio_from=job.target if job.audio and source.has_audio else None,
            label=state.label,
            hardware=job.hardware_encoder,
            preset=job.x264_preset,
            segment_frames=options.segment_frames,
            jobs=options.encoder_jobs or None,
            # Not resuming: a fingerprint no earlier run has, so any old work is thrown away.
            fingerprint=_fingerprint(state) + ("" if options.resume else f"|fresh {time.time_ns()}"),
        )
        report.encoder, report.encoder_fallback = writer.encoder_name, writer.fallback_reason
        start = writer.resume_point()
        if start:
            # the checkpoint is the state after the last kept frame, of the analyser in force there
            state.stage_at(start - 1).analyser.restore(writer.resume_state())
            report.resumed_from = start
            report.notes.append(f"resumed at frame {start}: earlier frames were kept from the last run")
        try:
            _run(state, report, source, writer, start, progress, cancel)
        except ContentBlockedError:
            writer.abort()
            writer.work.remove()  # blocked content is not kept for a resume
            raise
        except BaseException:
            writer.abort()  # the finished segments stay: running the job again resumes
            raise
        if report.frames + start == 0:
            writer.abort()
            writer.work.remove()
            raise DoppelError(f"Target {job.target} has no video frames that could be decoded")
        if report.faces_swapped == 0 and start == 0:
            if job.require_faces:
                writer.abort()
                writer.work.remove()  # nothing worth resuming
                raise NoFaceError(f"No face found in any frame of {job.target}: nothing was written")
            report.notes.append(
                f"no face found in any frame of {job.target}: written through with no face swapped "
                "(--require-faces refuses such a video)"
            )
        finishing = time.perf_counter()
        writer.finish()  # the encoders' last frames, then the join
        report.waits["finish_on_encoders"] = round(time.perf_counter() - finishing, 3)
        if source.ended_early:
            done = start + report.frames
            report.notes.append(
                f"{job.target} ended after {done} of {source.frame_count} frames (truncated?)"
            )


def _fingerprint(state: JobState) -> str:
    job = state.job
    parts = [
        str(job.target.resolve()),
        str(job.target.stat().st_size),
        str(job.target.stat().st_mtime_ns),
        *(f"{s.resolve()}:{s.stat().st_mtime_ns}" for s in _source_files(job)),
        repr(job.combine),
        *(f"{marker.frame}:{marker.settings.fingerprint()}" for marker in job.schedule()),
        repr((job.watermark, job.analysers, job.audio, job.codec, job.crf, job.hardware_encoder)),
        job.x264_preset,
        ",".join(state.label.models),
    ]
    return "|".join(parts)


def _source_files(job: SwapJob) -> list[Path]:
    """Every photo and identity file the job pastes from (its own and its references')."""
    files = list(job.sources)
    for marker in job.schedule():
        files += [f for reference in marker.settings.analysis.references for f in reference.source.files]
    return list(dict.fromkeys(files))


def _run(
    state: JobState,
    report: JobReport,
    source: VideoSource,
    writer: SegmentedVideoWriter,
    start: int,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> None:
    options = state.job.engine
    workers = options.worker_count(state.device)
    report.workers = workers
    every = max(1, round(float(source.fps) * CONTENT_CHECK_SECONDS))
    total = max(source.frame_count, start)
    batch = options.batch_size(state.swapper.compositor.swapper.batched)
    report.batch = batch
    # A resume continues right after the last kept frame's timestamp: exact on variable frame rate too.
    kept_until = writer.resume_pts() if start else None
    with ExitStack() as stack:
        frames = stack.enter_context(
            FrameQueue(source, capacity=options.queue, device=state.device, start=start, after_pts=kept_until)
        )
        pool: OrderedPool[list[_Analysed], list[_Rendered]] = stack.enter_context(
            OrderedPool(
                lambda items: _render(state, items),
                workers=workers,
                capacity=max(2 * workers, 4),
                name="swap",
                context=_stream_context(state.device),
                describe=lambda items: f"frames {items[0].index}–{items[-1].index} of {state.job.target}",
            )
        )
        feeder = threading.Thread(
            target=_feed,
            args=(state, frames, pool, writer, start, every, batch, cancel),
            name="analyse",
            daemon=True,
        )
        feeder.start()
        on_encoders = 0.0  # seconds write() blocked: the encoders' back-pressure
        try:
            for rendered in (one for chunk in _results(pool) for one in chunk):
                if rendered.landed is not None:
                    with state.timer.stage("download wait"):  # ~0 unless the GPU is behind
                        rendered.landed.synchronize()
                # The hand-off to the segment encoders' threads: ~0 unless they are behind (back-pressure)
                with state.timer.stage("encode"):
                    handing = time.perf_counter()
                    writer.write(rendered.image, rendered.pts, state=rendered.checkpoint)
                    on_encoders += time.perf_counter() - handing
                if report.first_frame_at is None:
                    report.first_frame_at = time.time()  # wall clock: a launcher can compare its own
                    mark("first frame written", report.first_frame_at)
                report.frames += 1
                report.faces_swapped += rendered.faces
                report.frames_with_faces += bool(rendered.faces)
                if progress is not None:
                    done = start + report.frames
                    progress(done, max(total, done))
            waits = pool.waits()
            report.waits = {
                "analysis_on_workers": round(waits.producer_s, 3),
                "worker_on_analysis": round(waits.worker_idle_s, 3),
                "ordering_on_workers": round(waits.consumer_s, 3),
                "ordering_on_encoders": round(on_encoders, 3),
            }
        finally:
            pool.stop()
            feeder.join(10)
            if feeder.is_alive():
                log.error("the analysis thread of %s did not stop within 10 s", state.job.target)
    trackers = [a.tracker for a in state.analysers() if a.tracker is not None]
    if trackers:
        totals = sum((tracker.totals for tracker in trackers), TrackEvents())
        report.tracking = {k: v for k, v in dataclasses.asdict(totals).items() if v}


def _results(pool: OrderedPool[list[_Analysed], list[_Rendered]]) -> Iterator[list[_Rendered]]:
    """The pool's results; a stage that failed with a domain error (a cancel, a blocked frame, a bad
    file) surfaces as that error, anything else as the PipelineError naming stage and frame."""
    try:
        yield from pool.results()
    except PipelineError as exc:
        if isinstance(exc.__cause__, DoppelError):
            raise exc.__cause__ from None
        raise


def _feed(
    state: JobState,
    frames: FrameQueue,
    pool: OrderedPool[list[_Analysed], list[_Rendered]],
    writer: SegmentedVideoWriter,
    start: int,
    every: int,
    batch: int,
    cancel: threading.Event | None,
) -> None:
    """The feeder thread: frames in order through the analyser, into the pool in chunks of `batch`.
    Without tracking, frames are analysed `batch` at a time (their detections and landmarks in
    batched model calls); with it, one by one, since each frame's faces follow from the last."""
    feed = _Feeder(state, pool, writer, every, batch, start)
    try:
        with on_analysis_stream(state.device):  # the one sequential stage, at high priority
            _feed_all(state, frames, feed, cancel)
        pool.close()
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
        pool.fail(exc, f"analysis of frame {feed.index} of {state.job.target}")


def _feed_all(state: JobState, frames: FrameQueue, feed: _Feeder, cancel: threading.Event | None) -> None:
    while True:
        with state.timer.stage("decode wait"):  # ~0 while the prefetch queue keeps ahead
            frame = frames.get()
        if frame is None:
            break
        if cancel is not None and cancel.is_set():
            raise JobCancelledError(f"Cancelled: {state.job.output} was not written (its segments are kept)")
        feed.add(frame)
    feed.flush()
    feed.submit()


class _Feeder:
    """Groups frames for analysis (one stage at a time) and analysed frames into worker chunks."""

    def __init__(
        self,
        state: JobState,
        pool: OrderedPool[list[_Analysed], list[_Rendered]],
        writer: SegmentedVideoWriter,
        every: int,
        batch: int,
        start: int,
    ) -> None:
        self.state, self.pool, self.writer, self.every, self.batch = state, pool, writer, every, batch
        self.index = start  # the next output frame to be analysed
        self.analyser = state.stage_at(max(0, start - 1)).analyser
        self.group: list[QueuedFrame] = []  # frames waiting to be analysed together
        self.group_stage: Stage | None = None
        self.chunk: list[_Analysed] = []

    def add(self, frame: QueuedFrame) -> None:
        stage = self.state.stage_at(self.index + len(self.group))
        if self.group and stage is not self.group_stage:
            self.flush()
        if stage.analyser is not self.analyser:  # a marker that changes what is detected: fresh tracks
            self.analyser = stage.analyser
            self.analyser.reset()
        self.group.append(frame)
        self.group_stage = stage
        if not self.analyser.batches_frames or len(self.group) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Analyse the waiting frames, then hand them to the chunk."""
        if not self.group or self.group_stage is None:
            return
        stage, group = self.group_stage, self.group
        self.group = []
        faces = self.analyser.analyse_many(
            [f.image for f in group], timer=self.state.timer, times=[f.time_s for f in group]
        )
        ready = None
        if group[0].image.is_cuda:
            ready = torch.cuda.Event()  # type: ignore[no-untyped-call]
            ready.record()
        for frame, found in zip(group, faces, strict=True):
            if self.chunk and self.chunk[-1].swapper is not stage.swapper:
                self.submit()  # a chunk is rendered by one swapper
            at_segment_end = self.writer.ends_segment(self.index)
            self.chunk.append(
                _Analysed(
                    self.index,
                    frame,
                    found,
                    check_content=self.index % self.every == 0,
                    # Grouped frames come only from stateless analysers, whose state is the same after
                    # every frame of the group.
                    checkpoint=self.analyser.state() if at_segment_end else None,
                    ready=ready,
                    swapper=stage.swapper,
                )
            )
            self.index += 1
            if len(self.chunk) == self.batch:
                self.submit()

    def submit(self) -> None:
        if self.chunk:
            self.pool.submit(self.chunk)
            self.chunk = []


def _render(state: JobState, items: list[_Analysed]) -> list[_Rendered]:
    """On a worker thread (and its CUDA stream): composite a chunk of frames (their faces through the
    models together), check, and bring the frames to the host."""
    for item in items:
        if item.ready is not None:
            stream = torch.cuda.current_stream()
            stream.wait_event(item.ready)
            # This worker's queued kernels read the decoded frame after this function returns (nothing
            # here waits for them): its memory must not go back to the decoder's stream before then.
            item.frame.image.record_stream(stream)
    swapper = items[0].swapper
    results = swapper.render_many([i.frame.image for i in items], [i.faces for i in items], state.timer)
    rendered = []
    for item, result in zip(items, results, strict=True):
        if item.check_content:
            state.check_content(result.frame, item.index, state.timer)
        landed = None
        with state.timer.stage("download"):
            # On the GPU the frame becomes YUV there: the encoder's thread is spared swscale's RGB → YUV,
            # and half the bytes come to the host. The copy is queued: this worker goes on to its next
            # frames while it lands, and the ordering thread waits on `landed` before encoding.
            host: torch.Tensor | I420 = result.frame
            if result.frame.is_cuda:
                host, landed = rgb_to_i420(result.frame).download()
        rendered.append(
            _Rendered(item.index, item.frame.pts, host, len(result.faces), item.checkpoint, landed)
        )
    return rendered


def _stream_context(device: torch.device) -> Callable[[int], AbstractContextManager[object]]:
    """Each worker on its own CUDA stream, so one worker's kernels overlap another's host work and
    ONNX Runtime calls (which wait only for the calling stream)."""
    if device.type != "cuda":
        return lambda index: nullcontext()
    return lambda index: torch.cuda.stream(torch.cuda.Stream(device))  # type: ignore[no-untyped-call]
