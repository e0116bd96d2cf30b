"""Reading still images: real files written with Pillow (or by hand where Pillow cannot write them)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.media.errors import MediaReadError
from app.media.images import ImageReadError, load_image, read_image


def _png16(path: Path, samples: np.ndarray) -> Path:
    """A 16-bit RGB PNG written by hand (Pillow cannot write 48-bit PNGs)."""
    height, width, _ = samples.shape
    rows = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    path.write_bytes(
        signature + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )
    return path


def test_rgb_png_reads_as_uint8_rgb(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert loaded.frame.dtype == torch.uint8 and tuple(loaded.frame.shape) == (30, 40, 3)
    assert torch.equal(loaded.frame, torch.from_numpy(pixels))
    assert loaded.alpha is None and loaded.bit_depth == 8 and loaded.mode == "RGB" and loaded.notes == ()
    assert torch.equal(read_image(tmp_path / "a.png"), loaded.frame)


def test_exif_orientation_6_turns_the_image_upright(tmp_path: Path) -> None:
    pixels = np.zeros((40, 60, 3), dtype=np.uint8)
    pixels[:10, :10] = (255, 0, 0)  # red block top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    loaded = load_image(tmp_path / "phone.jpg")
    assert tuple(loaded.frame.shape) == (60, 40, 3)
    top_right = loaded.frame[2:8, -8:-2].float().mean(dim=(0, 1))
    assert top_right[0] > 200 and top_right[1] < 60  # the block is now at the top right
    assert loaded.frame[-8:-2, 2:8].float().mean() < 30
    assert any("orientation 6" in note for note in loaded.notes)


def test_rgba_png_keeps_alpha_separately(tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert loaded.alpha is not None and loaded.alpha.dtype == torch.uint8
    assert torch.equal(loaded.alpha, torch.from_numpy(pixels[:, :, 3]))
    assert torch.equal(loaded.frame, torch.from_numpy(pixels[:, :, :3]))


def test_palette_transparency_becomes_alpha(tmp_path: Path) -> None:
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(0, (0, 0, 4, 8))
    image.save(tmp_path / "p.png", transparency=0)
    loaded = load_image(tmp_path / "p.png")
    assert loaded.alpha is not None
    assert loaded.alpha[:, :4].eq(0).all() and loaded.alpha[:, 4:].eq(255).all()
    assert loaded.frame[0, 7].tolist() == [255, 0, 0]


def test_16_bit_greyscale_png_is_scaled_to_8_bits(tmp_path: Path) -> None:
    samples = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)
    Image.fromarray(samples).save(tmp_path / "g16.png")
    loaded = load_image(tmp_path / "g16.png")
    assert loaded.bit_depth == 16 and loaded.mode.startswith("I;16")
    expected = np.round(samples / 257).astype(np.uint8)
    assert np.abs(loaded.frame[:, :, 0].numpy().astype(int) - expected).max() <= 1
    assert torch.equal(loaded.frame[:, :, 0], loaded.frame[:, :, 2])
    assert any("16-bit" in note for note in loaded.notes)
    assert any("greyscale" in note for note in loaded.notes)


def test_16_bit_rgb_png_and_tiff(tmp_path: Path) -> None:
    samples = np.random.default_rng(2).integers(0, 65536, (24, 32, 3)).astype(np.uint16)
    loaded = load_image(_png16(tmp_path / "rgb16.png", samples))
    assert loaded.bit_depth == 16 and tuple(loaded.frame.shape) == (24, 32, 3)
    assert np.abs(loaded.frame.numpy().astype(int) - (samples >> 8)).max() <= 1
    assert any("16-bit" in note for note in loaded.notes)
    grey = (np.arange(100).reshape(10, 10) * 600).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.tif")
    tiff = load_image(tmp_path / "g16.tif")
    assert tiff.bit_depth == 16 and int(tiff.frame[9, 9, 0]) == round(99 * 600 / 257)


def test_greyscale_becomes_rgb(tmp_path: Path) -> None:
    Image.fromarray(np.full((5, 6), 77, dtype=np.uint8)).save(tmp_path / "l.png")
    loaded = load_image(tmp_path / "l.png")
    assert tuple(loaded.frame.shape) == (5, 6, 3) and loaded.frame.eq(77).all()
    assert loaded.notes == ("greyscale expanded to RGB",)


def test_cmyk_jpeg_without_profile_is_converted_naively_with_a_note(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)  # pure red ink
    loaded = load_image(tmp_path / "cmyk.jpg")
    assert loaded.mode == "CMYK"
    red, green, blue = loaded.frame[4, 8].tolist()
    assert red > 230 and green < 30 and blue < 30
    assert any("naively" in note for note in loaded.notes)


def test_cmyk_with_an_unusable_icc_profile_falls_back_and_says_why(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg", icc_profile=b"not a profile")
    loaded = load_image(tmp_path / "cmyk.jpg")
    assert loaded.frame.float().mean() > 240
    assert any("could not be used" in note for note in loaded.notes)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.png", None, "does not exist"),
        ("empty.png", b"", "empty"),
        ("notes.png", b"these are not pixels\n" * 20, "not an image"),
    ],
)
def test_unreadable_files_are_refused_by_name(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=message) as error:
        load_image(path)
    assert str(path) in str(error.value)
    assert isinstance(error.value, MediaReadError)


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated") as error:
        load_image(tmp_path / "cut.jpg")
    assert "cut.jpg" in str(error.value)


def test_animated_gif_is_refused(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (10, 10), (i * 80, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(ImageReadError, match="animated images are not supported; use a video"):
        load_image(tmp_path / "anim.gif")


def test_absurd_sizes_are_refused_before_decoding(tmp_path: Path) -> None:
    Image.new("L", (20000, 1)).save(tmp_path / "wide.png")
    with pytest.raises(ImageReadError, match="20000x1"):
        load_image(tmp_path / "wide.png")


def test_zero_size_png_is_refused(tmp_path: Path) -> None:
    path = _png16(tmp_path / "zero.png", np.zeros((0, 0, 3), dtype=np.uint16))
    with pytest.raises(ImageReadError, match=r"zero\.png"):
        load_image(path)
