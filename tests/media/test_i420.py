"""RGB → I420 in torch (what GPU export workers hand the encoder) against swscale, and the writer's
I420 path against its RGB path."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from av.video.reformatter import ColorRange, Colorspace
from skimage import data

from app.media.errors import MediaWriteError
from app.media.i420 import I420, rgb_to_i420
from app.media.video import open_video
from app.media.video_writer import VideoWriter, _i420_frame


def swscale_i420(image: np.ndarray) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )
    return frame.to_ndarray()


@pytest.mark.parametrize("size", [(240, 320), (361, 479)])
def test_luma_matches_swscale_and_chroma_is_within_a_few_levels(size: tuple[int, int]) -> None:
    height, width = size
    photo = np.asarray(
        torch.nn.functional.interpolate(
            torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float(), size=size, mode="bilinear"
        )[0]
        .permute(1, 2, 0)
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
    )
    ours = rgb_to_i420(torch.from_numpy(photo))
    assert (ours.width, ours.height) == (width + width % 2, height + height % 2)
    padded = np.pad(photo, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    theirs = swscale_i420(padded).astype(int)
    mine = ours.data.numpy().astype(int)
    rows = ours.height
    assert np.abs(mine[:rows] - theirs[:rows]).max() <= 1  # Y
    chroma = np.abs(mine[rows:] - theirs[rows:])
    assert chroma.mean() < 0.5 and chroma.max() <= 12  # U, V: swscale filters chroma, we box-average


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        rgb_to_i420(torch.zeros(4, 4, 3))
    with pytest.raises(ValueError, match="even sides"):
        I420(torch.zeros(6, 3, dtype=torch.uint8), 3, 4)


def test_the_writer_takes_i420_frames(tmp_path: Path) -> None:
    frames = [torch.from_numpy(np.roll(data.astronaut(), shift * 8, axis=1).copy()) for shift in range(5)]
    for name, convert in (("rgb", lambda f: f), ("i420", rgb_to_i420)):
        with VideoWriter(tmp_path / f"{name}.mp4", 512, 512, Fraction(25), hardware=False) as writer:
            for frame in frames:
                writer.write(convert(frame))
    with open_video(tmp_path / "rgb.mp4") as a, open_video(tmp_path / "i420.mp4") as b:
        pairs = list(zip(a.frames(), b.frames(), strict=True))
    assert len(pairs) == 5
    for (via_rgb, via_i420), source in zip(pairs, frames, strict=True):
        error_rgb = (via_rgb.image.int() - source.int()).abs().float().mean()
        error_i420 = (via_i420.image.int() - source.int()).abs().float().mean()
        assert error_i420 <= error_rgb + 0.25  # as faithful to the source as swscale's conversion
    wrong = VideoWriter(tmp_path / "wrong.mp4", 320, 240, Fraction(25), hardware=False)
    with pytest.raises(MediaWriteError, match="I420 frame of 512x512, expected 320x240"):
        wrong.write(rgb_to_i420(frames[0]))
    wrong.abort()
    assert not (tmp_path / "wrong.mp4").exists()


def test_a_host_frame_downloads_as_itself() -> None:
    """The queued download (GPU export workers) is a no-op for a frame already on the host: the same
    planes and no event to wait on. Its GPU side is tests/gpu/test_gpu_streams.py."""
    frame = rgb_to_i420(torch.from_numpy(np.ascontiguousarray(data.astronaut()[:64, :96])))
    host, landed = frame.download()
    assert host is frame
    assert landed is None


@pytest.mark.parametrize("size", [(1920, 1080), (96, 64), (362, 240)])
def test_planes_reach_the_encoder_as_packed(size: tuple[int, int]) -> None:
    """Unpadded rows are copied a plane at a time, padded ones (362 wide) row by row: either way the
    frame holds exactly the packed planes."""
    width, height = size
    packed = np.random.default_rng(3).integers(0, 256, (height * 3 // 2, width), dtype=np.uint8)
    frame = _i420_frame(torch.from_numpy(packed), width, height)
    assert np.array_equal(frame.to_ndarray(), packed)
