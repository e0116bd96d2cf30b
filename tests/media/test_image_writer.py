"""Writing still images: every format round trips with its label, alpha where the format has it, and
nothing is left behind when a write fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from app.media.errors import MediaWriteError
from app.media.images import load_image, write_image
from app.media.labels import IPTC_COMPOSITE_SYNTHETIC, SyntheticLabel, read_label

LABEL = SyntheticLabel(models=("inswapper_128",), watermark=True)


def _frame(height: int = 36, width: int = 52, seed: int = 0) -> torch.Tensor:
    """Smooth content, so lossy formats stay close to it."""
    y = torch.arange(height).view(-1, 1).expand(height, width)
    x = torch.arange(width).view(1, -1).expand(height, width)
    planes = [x * 4, y * 6, (x + y) * 2 + seed * 10]
    return torch.stack(planes, dim=2).clamp(0, 255).to(torch.uint8)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


@pytest.mark.parametrize(
    ("suffix", "lossless"),
    [(".png", True), (".jpg", False), (".jpeg", False), (".webp", False), (".tif", True), (".tiff", True)],
)
def test_round_trip_with_label(tmp_path: Path, suffix: str, lossless: bool) -> None:
    frame = _frame()
    path = tmp_path / f"out{suffix}"
    assert write_image(path, frame, label=LABEL) == ()
    loaded = load_image(path)
    difference = (loaded.frame.int() - frame.int()).abs().float().mean().item()
    assert difference == 0 if lossless else difference < 4
    assert read_label(path) == LABEL
    assert _leftovers(tmp_path) == []
    with Image.open(path) as image:
        xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
        assert IPTC_COMPOSITE_SYNTHETIC in (xmp.decode() if isinstance(xmp, bytes) else xmp)
        if suffix != ".png":
            exif = image.getexif()
            assert exif[0x0131] == f"Doppel {LABEL.version}"
            assert SyntheticLabel.parse(exif[0x010E]) == LABEL


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_alpha_is_kept_where_the_format_has_it(tmp_path: Path, suffix: str) -> None:
    frame = _frame()
    alpha = (
        torch.linspace(0, 255, frame.shape[1]).round().to(torch.uint8).expand(frame.shape[0], -1).contiguous()
    )
    path = tmp_path / f"a{suffix}"
    assert write_image(path, frame, alpha=alpha, label=LABEL) == ()
    loaded = load_image(path)
    assert loaded.alpha is not None and torch.equal(loaded.alpha, alpha)


@pytest.mark.parametrize("suffix", [".jpg", ".bmp"])
def test_alpha_is_dropped_with_a_note_where_it_cannot_go(tmp_path: Path, suffix: str) -> None:
    alpha = torch.full((36, 52), 128, dtype=torch.uint8)
    notes = write_image(tmp_path / f"a{suffix}", _frame(), alpha=alpha)
    assert len(notes) == 1 and "alpha dropped" in notes[0]
    assert load_image(tmp_path / f"a{suffix}").alpha is None


def test_bmp_without_label_round_trips_and_with_label_is_refused(tmp_path: Path) -> None:
    frame = _frame()
    write_image(tmp_path / "plain.bmp", frame)
    assert torch.equal(load_image(tmp_path / "plain.bmp").frame, frame)
    assert read_label(tmp_path / "plain.bmp") is None
    with pytest.raises(MediaWriteError, match="cannot hold the synthetic-media label"):
        write_image(tmp_path / "labelled.bmp", frame, label=LABEL)
    assert not (tmp_path / "labelled.bmp").exists()
    assert _leftovers(tmp_path) == []


def test_unsupported_suffix_is_named(tmp_path: Path) -> None:
    with pytest.raises(MediaWriteError, match=r"'\.gif'"):
        write_image(tmp_path / "out.gif", _frame())


def test_missing_folder_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "no" / "such"
    with pytest.raises(MediaWriteError, match="does not exist") as error:
        write_image(folder / "out.png", _frame(), label=LABEL)
    assert str(folder) in str(error.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(MediaWriteError, match="not writable") as error:
            write_image(folder / "out.png", _frame())
        assert str(folder) in str(error.value)
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize(
    "frame",
    [
        torch.zeros((10, 10), dtype=torch.uint8),
        torch.zeros((10, 10, 4), dtype=torch.uint8),
        torch.zeros((10, 10, 3), dtype=torch.float32),
    ],
    ids=["2d", "4-channel", "float"],
)
def test_wrong_frames_are_refused_and_leave_nothing(tmp_path: Path, frame: torch.Tensor) -> None:
    with pytest.raises(MediaWriteError, match="uint8 \\[H, W, 3\\]"):
        write_image(tmp_path / "out.png", frame)
    assert list(tmp_path.iterdir()) == []


def test_an_encoder_failure_removes_the_partial_file(tmp_path: Path) -> None:
    # WebP's limit is 16383 pixels a side: Pillow fails inside save(), after the partial file exists.
    with pytest.raises(MediaWriteError, match=r"out\.webp"):
        write_image(tmp_path / "out.webp", torch.zeros((1, 16384, 3), dtype=torch.uint8))
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_the_old_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    write_image(path, _frame(seed=1))
    write_image(path, _frame(seed=2), label=LABEL)
    assert torch.equal(load_image(path).frame, _frame(seed=2))
    assert read_label(path) == LABEL
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
