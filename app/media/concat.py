"""Joining video-only segments into one file by stream copy, with the source's audio and the label.

The segments of a resumable export (app.media.segments) come from fresh encoders with identical
settings, so they share one codec configuration (SPS/PPS, compared here) and each starts with a
keyframe: their packets can follow one another in a single stream without re-encoding, which costs
no quality and takes seconds. Timestamps are the source's own (each segment was encoded with them),
so they are copied as they are; only a decode timestamp that would not increase at a seam (x264 puts
the first frames' dts before their pts, and a variable frame rate can make that reach back past the
previous segment) is nudged up, which moves no frame's presentation time.

Audio goes through AudioTrack as in VideoWriter: copied (or transcoded to AAC), interleaved as the
video advances, from the first frame's time to the video's end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.video.stream import VideoStream

from app.media.audio import AudioTrack
from app.media.errors import MediaWriteError
from app.media.labels import VIDEO_LABEL_TAGS, SyntheticLabel

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (segments joined, segments in all)


def join_segments(
    segments: Sequence[Path],
    target: Path,
    *,
    start_s: float,
    end_s: float,
    audio_from: Path | None = None,
    label: SyntheticLabel | None = None,
    progress: Progress | None = None,
) -> None:
    """Write `segments` one after another into `target` (its suffix picks the container).

    `start_s` and `end_s` are where the video starts and ends (first frame's time; last frame's time
    plus one frame), which bound the audio. On an error `target` may be left half-written: the caller
    owns it (it is a partial name) and removes it.
    """
    if not segments:
        raise MediaWriteError(f"Cannot write {target}: no segments to join")
    movflags = {"movflags": "+faststart"} if target.suffix.lower() in (".mp4", ".mov") else {}
    try:
        output: OutputContainer = av.open(str(target), "w", container_options=movflags)
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaWriteError(f"Cannot write {target}: {exc}") from exc
    audio: AudioTrack | None = None
    try:
        if label is not None:
            for tag in VIDEO_LABEL_TAGS:
                output.metadata[tag] = label.to_json()
        joiner = _Joiner(output, target, segments[0])
        if audio_from is not None:
            audio = AudioTrack(audio_from, output)
            audio.start_s = start_s
            joiner.audio = audio
        for number, segment in enumerate(segments):
            joiner.append(segment)
            if progress is not None:
                progress(number + 1, len(segments))
        if audio is not None:
            audio.finish(end_s)
        output.close()
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        _close_quietly(output, audio, target)
        raise MediaWriteError(f"Cannot join the segments of {target}: {exc}") from exc
    except BaseException:
        _close_quietly(output, audio, target)
        raise


class _Joiner:
    """The output's video stream, made from the first segment's, and the packets' running state."""

    def __init__(self, output: OutputContainer, target: Path, first: Path) -> None:
        self.output, self.target = output, target
        self.audio: AudioTrack | None = None
        with _open_segment(first) as container:
            template = _video_stream(container, first)
            self.extradata = bytes(template.codec_context.extradata or b"")
            if template.time_base is None:
                raise MediaWriteError(f"Cannot write {target}: {first} has no time base")
            self.time_base: Fraction = template.time_base
            stream = output.add_stream_from_template(template)
        if not isinstance(stream, VideoStream):
            raise MediaWriteError(f"Cannot write {target}: {first} holds no video stream")
        if stream.codec_context.name == "hevc" and target.suffix.lower() in (".mp4", ".mov"):
            stream.codec_context.codec_tag = "hvc1"  # as VideoWriter: what Apple players need for HEVC
        stream.time_base = self.time_base
        self.stream: VideoStream = stream
        self.last_dts: int | None = None
        self.latest_s = float("-inf")

    def append(self, segment: Path) -> None:
        with _open_segment(segment) as container:
            source = _video_stream(container, segment)
            if bytes(source.codec_context.extradata or b"") != self.extradata:
                raise MediaWriteError(
                    f"Cannot join {segment} into {self.target}: it was encoded with other settings "
                    "(its codec configuration differs from the first segment's)"
                )
            if source.time_base != self.time_base:
                raise MediaWriteError(
                    f"Cannot join {segment} into {self.target}: time base {source.time_base} "
                    f"differs from the first segment's {self.time_base}"
                )
            for packet in container.demux(source):
                if packet.size == 0 or packet.pts is None:
                    continue  # the demuxer's empty end-of-stream packet
                self._mux(packet, segment)

    def _mux(self, packet: Packet[VideoStream], segment: Path) -> None:
        assert packet.pts is not None  # checked by the caller
        if packet.dts is not None and self.last_dts is not None and packet.dts <= self.last_dts:
            if self.last_dts + 1 > packet.pts:
                raise MediaWriteError(
                    f"Cannot join {segment} into {self.target}: its timestamps overlap the previous "
                    f"segment's (pts {packet.pts} after dts {self.last_dts})"
                )
            log.debug("%s: dts %d raised to %d at a seam", segment.name, packet.dts, self.last_dts + 1)
            packet.dts = self.last_dts + 1
        if packet.dts is not None:
            self.last_dts = packet.dts
        packet.stream = self.stream
        self.output.mux(packet)
        self.latest_s = max(self.latest_s, float(packet.pts * self.time_base))
        if self.audio is not None:
            self.audio.pump(self.latest_s)


def _open_segment(path: Path) -> InputContainer:
    try:
        return av.open(str(path), "r")
    except av.error.FFmpegError as exc:
        raise MediaWriteError(f"Cannot read the segment {path}: {exc}") from exc


def _video_stream(container: InputContainer, path: Path) -> VideoStream:
    if not container.streams.video:
        raise MediaWriteError(f"The segment {path} holds no video stream")
    return container.streams.video[0]


def _close_quietly(output: OutputContainer, audio: AudioTrack | None, target: Path) -> None:
    for closable in (audio, output):
        if closable is None:
            continue
        try:
            closable.close()
        except (av.error.FFmpegError, OSError, ValueError) as exc:  # the file is thrown away anyway
            log.debug("While abandoning %s: %s", target, exc)
