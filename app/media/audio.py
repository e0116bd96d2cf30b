"""Carrying a source file's audio into an output video.

A face swap leaves the sound alone, so the audio is copied packet for packet (no generation loss, no
time) when the output container can hold its codec, and transcoded to AAC only when it cannot (PCM u8
or WavPack from a Matroska source into MP4, for instance). Timestamps are kept, so sound stays in sync
with video written with the source's own timestamps. Packets are handed to the muxer as the video
advances (`pump`), which lets FFmpeg interleave the two streams instead of appending all the sound at
the end; audio that starts after the last video frame is dropped, so a shortened export has no tail of
sound over nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet

from app.media.errors import MediaWriteError

log = logging.getLogger(__name__)

FALLBACK_AUDIO_CODEC: Final = "aac"
_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


class AudioTrack:
    """The first audio stream of `source`, added to `output`; `present` is False when it has none."""

    def __init__(self, source: Path, output: OutputContainer) -> None:
        self.source = source
        self.present = False
        self.transcoded = False
        self.start_s = float("-inf")  # the writer sets the first video frame's time
        self._output = output
        self._next: Packet[AudioStream] | None = None
        self._closed = False
        try:
            self._input: InputContainer = av.open(str(source), "r")
        except av.error.FFmpegError as exc:
            raise MediaWriteError(f"Cannot take audio from {source}: PyAV cannot read it ({exc})") from exc
        if not self._input.streams.audio:
            log.info("%s has no audio stream; the output will be silent", source)
            self.close()
            return
        self._in: AudioStream = self._input.streams.audio[0]
        self._out: AudioStream = self._add_output_stream()
        self._packets: Iterator[Packet[AudioStream]] = self._input.demux(self._in)
        self.present = True

    def _add_output_stream(self) -> AudioStream:
        try:
            stream = self._output.add_stream_from_template(self._in)
        except ValueError as exc:  # PyAV: "'mp4' format does not support 'pcm_u8' codec"
            self.transcoded = True
            log.info("Audio of %s is transcoded to AAC: %s", self.source, exc)
            context = self._in.codec_context
            aac = self._output.add_stream(FALLBACK_AUDIO_CODEC, rate=context.sample_rate)
            aac.layout = _DEFAULT_LAYOUTS.get(context.channels, "stereo")  # decoders may report "1 channels"
            aac.bit_rate = 192_000
            return aac
        return stream

    @property
    def codec(self) -> str:
        return self._out.codec_context.name if self.present else ""

    def pump(self, until_s: float) -> None:
        """Mux the source's audio packets that start before `until_s` seconds (those that end before
        `start_s`, the first video frame's time, are skipped: an export of a later stretch of the
        source gets only that stretch's sound)."""
        if not self.present:
            return
        while True:
            packet = self._next if self._next is not None else next(self._packets, None)
            self._next = None
            if packet is None:
                return
            if packet.pts is None or packet.time_base is None:
                continue  # the demuxer's empty end-of-stream packet
            start = float(packet.pts * packet.time_base)
            if start >= until_s:
                self._next = packet  # not yet: wait until the video has caught up
                return
            if start + float((packet.duration or 0) * packet.time_base) <= self.start_s:
                continue
            self._mux(packet)

    def finish(self, end_s: float) -> None:
        """Mux the rest up to the video's end, flush an encoder, and close the source."""
        if not self.present:
            return
        try:
            self.pump(end_s)
            if self.transcoded:
                self._encode(None)
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._input.close()

    def _mux(self, packet: Packet[AudioStream]) -> None:
        if not self.transcoded:
            packet.stream = self._out
            self._output.mux(packet)
            return
        for frame in self._in.decode(packet):
            self._encode(frame)

    def _encode(self, frame: AudioFrame | None) -> None:
        if frame is not None and frame.time_base is None:
            frame.time_base = self._in.time_base or Fraction(1, frame.sample_rate)
        for packet in self._out.encode(frame):
            self._output.mux(packet)
