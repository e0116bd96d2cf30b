"""The model-free maths of compositing: box mask feather, Reinhard transfer, pixel-boost tiling,
paste-back and its guided-filter edge. Real images (skimage's astronaut), no models."""

from __future__ import annotations

import pytest
import torch
from skimage import data

from app.faces.alignment import estimate, invert, warp, warp_frame
from app.processing.blend import paste_back, smoothing_radius
from app.processing.colour import masked_stats, reinhard, to_lab
from app.processing.masks.box import box_mask, feather_width
from app.processing.pixel_boost import boost_factor, from_tiles, to_tiles
from app.processing.settings import MaskSettings
from tests.support.faces import face_at

CPU = torch.device("cpu")


def astronaut() -> torch.Tensor:
    return torch.from_numpy(data.astronaut().copy())


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(255.0**2 / mse)).item()


# -- box mask -----------------------------------------------------------------------------------------


def test_box_mask_is_zero_at_the_edge_one_inside_and_feathered_by_percent() -> None:
    mask = box_mask(256, MaskSettings(feather=10.0), CPU)
    assert mask.shape == (1, 1, 256, 256)
    assert mask[0, 0, 0].max() == 0 and mask[0, 0, :, 0].max() == 0
    assert mask[0, 0, 128, 128] == 1.0
    assert abs(feather_width(mask[0, 0, 128]) - 26) <= 1  # 10% of 256 px
    wider = box_mask(256, MaskSettings(feather=20.0), CPU)
    assert abs(feather_width(wider[0, 0, 128]) - 51) <= 1


def test_box_mask_padding_cuts_each_side() -> None:
    mask = box_mask(100, MaskSettings(feather=0.0, padding=(10.0, 0.0, 30.0, 0.0)), CPU)[0, 0]
    assert mask[:10].max() == 0 and mask[10:70].min() == 1 and mask[70:].max() == 0


@pytest.mark.parametrize("size", [60.0, 240.0])
def test_feather_in_the_frame_scales_with_the_face(size: float) -> None:
    """Pasted into a frame, a mask's ramp is as wide as the same share of the face: 4x the face, 4x
    the feather."""
    frame = torch.zeros((400, 400, 3), dtype=torch.uint8)
    face = face_at(200, 200, size)
    matrix = estimate(face.kps, "arcface_128", 128)
    white = torch.full((1, 3, 128, 128), 255.0)
    paste_back(frame, white, box_mask(128, MaskSettings(feather=20.0), CPU), matrix)
    row = frame[200, :, 0].float() / 255
    ramp = int(((row > 0.02) & (row < 0.98)).sum().item()) / 2  # both edges
    scale = size / 60.0
    expected = 0.2 * 128 / float(torch.linalg.det(matrix[:, :2]).sqrt())
    assert ramp == pytest.approx(expected, rel=0.25), (ramp, expected, scale)


def test_feather_ratio_between_face_sizes() -> None:
    widths = []
    for size in (60.0, 240.0):
        frame = torch.zeros((400, 400, 3), dtype=torch.uint8)
        matrix = estimate(face_at(200, 200, size).kps, "arcface_128", 128)
        paste_back(
            frame, torch.full((1, 3, 128, 128), 255.0), box_mask(128, MaskSettings(feather=20.0), CPU), matrix
        )
        row = frame[200, :, 0].float() / 255
        widths.append(int(((row > 0.02) & (row < 0.98)).sum().item()))
    assert widths[1] / widths[0] == pytest.approx(4.0, rel=0.15)


# -- colour transfer ----------------------------------------------------------------------------------


def _crops() -> tuple[torch.Tensor, torch.Tensor]:
    frame = astronaut()
    face = face_at(250, 130, 120)
    target = warp_frame(frame, estimate(face.kps, "arcface_128", 128), (128, 128))
    # A different-looking "swap": the same crop with its channels swapped and darkened.
    swapped = target[:, [2, 0, 1]] * 0.6 + 20
    return swapped, target


def test_reinhard_matches_the_targets_lab_mean_and_std_inside_the_mask() -> None:
    swapped, target = _crops()
    mask = box_mask(128, MaskSettings(feather=5.0, padding=(10, 10, 10, 10)), CPU)
    result = reinhard(swapped, target, mask, 1.0)
    got_mean, got_std = masked_stats(to_lab(result), mask)
    want_mean, want_std = masked_stats(to_lab(target), mask)
    before_mean, _ = masked_stats(to_lab(swapped), mask)
    # Within 1% of each channel's range (L 0..100, a/b ~ -128..127): a, b means sit near 0, where a
    # relative error would be meaningless.
    ranges = torch.tensor([100.0, 255.0, 255.0]).view(1, 3, 1, 1)
    assert ((got_mean - want_mean).abs() / ranges).max() < 0.01
    assert ((got_std - want_std).abs() / ranges).max() < 0.01
    assert ((got_std - want_std).abs() / want_std).max() < 0.05  # and within 5% relative
    assert ((before_mean - want_mean).abs() / ranges).max() > 0.05  # it did have to move


def test_reinhard_strength_blends_and_zero_is_off() -> None:
    swapped, target = _crops()
    mask = torch.ones((1, 1, 128, 128))
    assert torch.equal(reinhard(swapped, target, mask, 0.0), swapped)
    full = reinhard(swapped, target, mask, 1.0)
    half = reinhard(swapped, target, mask, 0.5)
    assert torch.allclose(half, (swapped + full) / 2, atol=1e-3)


# -- pixel boost ------------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_tiles_round_trip_and_interleave(factor: int) -> None:
    crop = torch.rand(1, 3, 128 * factor, 128 * factor)
    tiles = to_tiles(crop, factor)
    assert tiles.shape == (factor * factor, 3, 128, 128)
    assert torch.equal(from_tiles(tiles, factor), crop)
    if factor > 1:  # tile (i, j) holds pixels (y*k + i, x*k + j)
        assert torch.equal(tiles[1], crop[0, :, 0::factor, 1::factor])
        assert torch.equal(tiles[factor], crop[0, :, 1::factor, 0::factor])


def test_boost_factor_refuses_non_multiples() -> None:
    assert boost_factor(128, 512) == 4
    with pytest.raises(ValueError, match="not 1 to 4 times"):
        boost_factor(256, 384)
    with pytest.raises(ValueError, match="not 1 to 4 times"):
        boost_factor(128, 640)


# -- paste-back -----------------------------------------------------------------------------------------


def test_paste_of_the_crop_itself_gives_the_frame_back() -> None:
    frame = astronaut()
    face = face_at(250, 130, 120)
    matrix = estimate(face.kps, "arcface_128", 256)
    crop = warp_frame(frame, matrix, (256, 256))
    out = frame.clone()
    paste_back(out, crop, box_mask(256, MaskSettings(), CPU), matrix)
    assert psnr(out, frame) > 38
    assert not torch.equal(out, frame)  # something was resampled


def test_paste_changes_only_what_the_mask_covers() -> None:
    frame = astronaut()
    face = face_at(250, 130, 120)
    matrix = estimate(face.kps, "arcface_128", 128)
    flat = torch.zeros((1, 3, 128, 128))
    flat[:, 1] = 255.0
    mask = box_mask(128, MaskSettings(padding=(20, 20, 20, 20)), CPU)
    out = paste_back(frame.clone(), flat, mask, matrix, edge_smoothing=60.0)
    changed = (out != frame).any(dim=2)
    # Everything outside the mask's footprint in the frame is byte-identical.
    footprint = warp(mask, invert(matrix)[None], (512, 512))[0, 0] > 0
    reach = smoothing_radius(matrix, 128, 60.0) + 1  # the filter may move the edge by its radius
    grown = torch.nn.functional.max_pool2d(footprint[None, None].float(), 2 * reach + 1, 1, reach)[0, 0] > 0
    assert not changed[~grown].any()
    assert changed[130, 250]  # the face centre became green
    assert out[130, 250, 1] > 240 and out[130, 250, 0] < 15


def test_edge_smoothing_radius_follows_face_size() -> None:
    small = estimate(face_at(200, 200, 50).kps, "arcface_128", 128)
    large = estimate(face_at(200, 200, 200).kps, "arcface_128", 128)
    assert smoothing_radius(small, 128, 0.0) == 0
    assert smoothing_radius(large, 128, 100.0) == pytest.approx(
        4 * smoothing_radius(small, 128, 100.0), abs=1
    )


def test_guided_edge_follows_the_frame() -> None:
    """A hard vertical frame edge near the mask edge pulls the smoothed mask toward it."""
    frame = torch.zeros((200, 200, 3), dtype=torch.uint8)
    frame[:, 100:] = 255
    matrix = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # crop == frame
    mask = torch.zeros((1, 1, 200, 200))
    mask[..., 94:] = 1.0  # the mask edge is 6 px left of the image edge
    crop = torch.full((1, 3, 200, 200), 128.0)
    plain = paste_back(frame.clone(), crop, mask, matrix, edge_smoothing=0.0)
    smooth = paste_back(frame.clone(), crop, mask, matrix, edge_smoothing=100.0)
    assert not torch.equal(plain, smooth)
    assert smoothing_radius(matrix, 200, 100.0) == 20
    assert (smooth[:, : 94 - 21] == 0).all()  # beyond the filter's radius nothing moves
    # The mask's 6-px overhang onto the dark side is pulled back toward the frame's edge at 100.
    overhang = (smooth[100, 94:100, 0].float() - 0).mean()
    assert overhang < (plain[100, 94:100, 0].float()).mean()
