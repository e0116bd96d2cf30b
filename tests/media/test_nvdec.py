"""Hardware decoding and the GPU colour path: NVDEC falls back to software with a reason where it
cannot run, and app.media.yuv (run here on the CPU, the same torch code as on the GPU) agrees with
swscale, which VideoSource uses. The CUDA tests run where a GPU is present."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from av.codec.hwaccel import hwdevices_available

from app.media.capabilities import NO_NVIDIA_GPU, nvidia_gpu_absent
from app.media.frame_queue import FrameQueue
from app.media.video import open_video, swscale_rgb
from app.media.yuv import GpuFrameConverter, YuvColour, colour_of, host_planes, nv12_to_rgb, yuv_to_rgb
from tests.support.media import make_clip, pattern

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
BT709, UNSPECIFIED, SMPTE170M, BT2020 = 1, 2, 6, 9
LIMITED, FULL = 1, 2


def software_frames(path: Path) -> list[torch.Tensor]:
    with open_video(path) as source:
        return [frame.image for frame in source.frames()]


def max_diff(a: torch.Tensor, b: torch.Tensor) -> int:
    return int((a.cpu().int() - b.cpu().int()).abs().max())


def cpu_convert(frame: av.VideoFrame) -> torch.Tensor:
    """app.media.yuv on the CPU, as GpuFrameConverter runs it on the GPU after the upload."""
    colour = colour_of(frame)
    assert colour is not None
    planes = [torch.from_numpy(p.copy()) for p in host_planes(frame)]
    if frame.format.name == "nv12":
        return nv12_to_rgb(planes[0], planes[1].view(planes[1].shape[0], -1, 2), colour)
    return yuv_to_rgb(planes[0], planes[1], planes[2], colour)


def tagged_frame(
    size: tuple[int, int], pix_fmt: str, space: int, colour_range: int, noise: bool
) -> av.VideoFrame:
    width, height = size
    if noise:  # the harshest case for chroma: every pixel a different colour
        rgb = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        rgb = pattern(height, width)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format=pix_fmt, dst_color_range=colour_range
    )
    frame.colorspace, frame.color_range = space, colour_range
    return frame


# ---- FFmpeg's abilities ----------------------------------------------------------------------------


def test_this_ffmpeg_has_cuda_hwaccel_for_the_common_codecs() -> None:
    assert "cuda" in hwdevices_available()
    for codec in ("h264", "hevc", "vp9", "av1"):
        configs = av.Codec(codec, "r").hardware_configs
        assert any(c.device_type.name == "cuda" and c.is_supported for c in configs), codec


# ---- colour conversion against swscale ---------------------------------------------------------------


@pytest.mark.parametrize("size", [(320, 240), (640, 360), (1280, 720)])
@pytest.mark.parametrize("colour_range", [LIMITED, FULL])
def test_yuv420p_matches_swscale(size: tuple[int, int], colour_range: int) -> None:
    """Untagged frames: BT.601 below 720 lines, BT.709 from 720 on (VideoSource's rule)."""
    frame = tagged_frame(size, "yuv420p", UNSPECIFIED, colour_range, noise=True)
    colour = colour_of(frame)
    assert colour == YuvColour("bt709" if size[1] >= 720 else "bt601", colour_range == FULL)
    converted, expected = cpu_convert(frame), swscale_rgb(frame)
    assert converted.shape == expected.shape == (size[1], size[0], 3) and converted.dtype == torch.uint8
    assert max_diff(converted, expected) <= 2
    assert (converted.float() - expected.float()).abs().mean() < 1.0


@pytest.mark.parametrize(("space", "matrix"), [(BT709, "bt709"), (SMPTE170M, "bt601"), (BT2020, "bt2020")])
@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_tagged_matrices_match_swscale(space: int, matrix: str, pix_fmt: str) -> None:
    frame = tagged_frame((320, 240), pix_fmt, space, LIMITED, noise=True)
    assert colour_of(frame) == YuvColour(matrix, False)  # type: ignore[arg-type]
    assert max_diff(cpu_convert(frame), swscale_rgb(frame)) <= 2


def test_yuvj_formats_are_full_range() -> None:
    frame = tagged_frame((320, 240), "yuvj420p", UNSPECIFIED, 0, noise=True)
    frame.color_range = 0  # untagged, but the format says JPEG range
    colour = colour_of(frame)
    assert colour is not None and colour.full_range
    assert max_diff(cpu_convert(frame), swscale_rgb(frame)) <= 2


def test_nv12_converts_exactly_as_the_yuv420p_it_holds() -> None:
    """NVDEC hands out NV12; it must come out as software-decoded yuv420p does."""
    frame = tagged_frame((640, 360), "yuv420p", UNSPECIFIED, LIMITED, noise=True)
    nv12 = frame.reformat(format="nv12")
    nv12.colorspace, nv12.color_range = frame.colorspace, frame.color_range
    assert torch.equal(cpu_convert(nv12), cpu_convert(frame))
    assert torch.equal(swscale_rgb(nv12), swscale_rgb(frame))  # VideoSource's CPU path too


def test_sixteen_bit_planes_convert_as_their_top_eight_bits() -> None:
    """P010/P016 (NVDEC's 10/12-bit output) hold samples in the high bits of 16."""
    frame = tagged_frame((320, 240), "yuv420p", UNSPECIFIED, LIMITED, noise=True)
    y, u, v = (torch.from_numpy(p.copy()) for p in host_planes(frame))
    colour = YuvColour("bt601", False)
    wide = [(p.to(torch.int32) << 8).to(torch.uint16) for p in (y, u, v)]
    assert torch.equal(yuv_to_rgb(*wide, colour), yuv_to_rgb(y, u, v, colour))


def test_odd_sizes_keep_their_last_row_and_column() -> None:
    frame = tagged_frame((321, 241), "yuv420p", UNSPECIFIED, LIMITED, noise=False)
    assert cpu_convert(frame).shape == (241, 321, 3)


@pytest.mark.parametrize("size", [(320, 240), (1280, 720)])
def test_decoded_clip_frames_match_videosource(tmp_path: Path, size: tuple[int, int]) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.4, size=size, audio=False)
    with av.open(str(clip)) as container:
        decoded = list(container.decode(video=0))
    reference = software_frames(clip)
    assert len(decoded) == len(reference)
    for frame, expected in zip(decoded, reference, strict=True):
        assert max_diff(cpu_convert(frame), expected) <= 2


# ---- hardware request without the hardware -----------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback is for machines without CUDA")
def test_hardware_falls_back_to_software_with_a_reason(clip: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app.media.video"), open_video(clip, hardware=True) as video:
        assert video.decoder == "software"
        reason = video.hardware_fallback_reason
        # said plainly where there is no GPU at all, not as FFmpeg's errno
        assert reason == NO_NVIDIA_GPU if nvidia_gpu_absent() else reason is not None and "CUDA" in reason
        frames = [frame.image for frame in video.frames()]
    assert any(
        "decoding in software" in r.getMessage() and str(clip) in r.getMessage() for r in caplog.records
    )
    assert all(torch.equal(a, b) for a, b in zip(frames, software_frames(clip), strict=True))


def test_software_by_default_has_no_fallback_reason(clip: Path) -> None:
    with open_video(clip) as video:
        assert video.decoder == "software" and video.hardware_fallback_reason is None


def test_a_cuda_device_without_cuda_is_refused(clip: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        open_video(clip, device="cuda")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        GpuFrameConverter(torch.device("cpu"))


# ---- on a GPU ----------------------------------------------------------------------------------------


@needs_cuda
def test_nvdec_to_host_equals_software_decoding(clip: Path) -> None:
    """H.264 decoding is bit-exact, and NV12 goes through swscale as yuv420p: the same frames."""
    with open_video(clip, hardware=True) as video:
        assert video.decoder == "nvdec", video.hardware_fallback_reason
        assert video.hardware_fallback_reason is None
        frames = [frame.image for frame in video.frames()]
    reference = software_frames(clip)
    assert len(frames) == len(reference) and all(f.device.type == "cpu" for f in frames)
    assert all(torch.equal(a, b) for a, b in zip(frames, reference, strict=True))


@needs_cuda
@pytest.mark.parametrize("hardware", [True, False])
def test_frames_converted_on_the_gpu_match_the_cpu_path(tmp_path: Path, hardware: bool) -> None:
    """NVDEC frames read in place through DLPack, or software frames uploaded as YUV."""
    clip = make_clip(tmp_path / "hd.mp4", seconds=0.6, size=(1280, 720), audio=False)
    with open_video(clip, hardware=hardware, device="cuda") as video:
        assert video.decoder == ("nvdec" if hardware else "software")
        frames = [frame.image for frame in video.frames()]
    reference = software_frames(clip)
    assert len(frames) == len(reference)
    assert all(f.is_cuda and f.shape == (720, 1280, 3) and f.is_contiguous() for f in frames)
    assert max(max_diff(a, b) for a, b in zip(frames, reference, strict=True)) <= 2


@needs_cuda
def test_gpu_conversion_equals_cpu_conversion() -> None:
    frame = tagged_frame((640, 360), "yuv420p", BT709, FULL, noise=True)
    converter = GpuFrameConverter(torch.device("cuda", torch.cuda.current_device()))
    on_gpu = converter.convert(frame)
    assert on_gpu is not None and on_gpu.is_cuda
    assert max_diff(on_gpu, cpu_convert(frame)) <= 1  # float rounding may differ at a floor's edge


@needs_cuda
def test_nvdec_rotated_clip_through_the_queue(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "r90.mp4", seconds=1.0, audio=False, rotation=90)
    reference = software_frames(clip)
    with open_video(clip, hardware=True, device="cuda") as video, FrameQueue(video, 16, "cuda") as queue:
        assert video.decoder == "nvdec" and (video.width, video.height) == (240, 320)
        frames = list(queue)
        queue.seek(13)
        landed = queue.get(timeout=5)
    assert [f.index for f in frames] == list(range(len(reference)))
    assert max(max_diff(f.image, r) for f, r in zip(frames, reference, strict=True)) <= 2
    assert landed is not None and landed.index == 13 and max_diff(landed.image, reference[13]) <= 2


@needs_cuda
def test_nvdec_opens_after_torch_took_the_gpu_and_on_another_thread(clip: Path) -> None:
    """FFmpeg's default (retaining the primary context with its own flags) fails once torch is active;
    the source adopts torch's context instead, from whichever thread opens it."""
    torch.zeros(1, device="cuda").add_(1)  # torch's context is active, with torch's flags
    opened: dict[str, object] = {}

    def work() -> None:
        with open_video(clip, hardware=True, device="cuda") as video:
            opened["decoder"], opened["reason"] = video.decoder, video.hardware_fallback_reason
            opened["first"] = next(iter(video.frames())).image.cpu()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert opened["decoder"] == "nvdec", opened["reason"]
    first = opened["first"]
    assert isinstance(first, torch.Tensor) and max_diff(first, software_frames(clip)[0]) <= 2


@needs_cuda
def test_a_consumer_on_its_own_stream_gets_finished_frames(clip: Path) -> None:
    reference = software_frames(clip)
    consumer = torch.cuda.Stream()
    with open_video(clip, hardware=True, device="cuda") as video, FrameQueue(video, 16, "cuda") as queue:
        with torch.cuda.stream(consumer):
            sums = [frame.image.int().sum() for frame in queue]  # on the consumer's stream
        consumer.synchronize()
    expected = [ref.int().sum() for ref in reference]
    assert len(sums) == len(expected)
    pixels = reference[0].numel()
    assert all(abs(int(s) - int(e)) <= 2 * pixels for s, e in zip(sums, expected, strict=True))


@pytest.mark.skipif(sys.platform != "linux", reason="device nodes are read on Linux only")
def test_no_nvidia_gpu_is_said_only_without_its_device_nodes(tmp_path: Path) -> None:
    assert nvidia_gpu_absent(tmp_path)  # no /dev/nvidia0 and no WSL2 /dev/dxg
    (tmp_path / "nvidia0").touch()
    assert not nvidia_gpu_absent(tmp_path)
    (tmp_path / "nvidia0").unlink()
    (tmp_path / "dxg").touch()  # WSL2 reaches the GPU through this: NVENC may work there
    assert not nvidia_gpu_absent(tmp_path)
