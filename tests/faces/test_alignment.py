"""Alignment recovers known similarity transforms and its inverse round-trips, within half a pixel."""

from __future__ import annotations

import math

import pytest
import torch

from app.faces.alignment import (
    TEMPLATES,
    crop_face,
    estimate,
    invert,
    template,
    transform_points,
    umeyama,
    warp,
    warp_frame,
)


def similarity(scale: float, degrees: float, tx: float, ty: float) -> torch.Tensor:
    angle = math.radians(degrees)
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return torch.tensor([[c, -s, tx], [s, c, ty]], dtype=torch.float32)


@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.parametrize(
    ("scale", "degrees", "tx", "ty"),
    [(1.0, 0.0, 0.0, 0.0), (2.7, 33.0, 410.0, -55.0), (0.4, -170.0, 12.0, 300.0)],
)
def test_a_face_moved_by_a_known_transform_is_recovered(
    name: str, scale: float, degrees: float, tx: float, ty: float
) -> None:
    crop_points = template(name, 256)
    moved = similarity(scale, degrees, tx, ty)
    frame_points = transform_points(crop_points, moved)  # the face as it appears in a frame
    recovered = estimate(frame_points, name, 256)  # frame → crop
    assert (transform_points(frame_points, recovered) - crop_points).norm(dim=1).max() < 0.5
    assert torch.allclose(invert(recovered), moved, atol=1e-3)
    back = transform_points(transform_points(frame_points, recovered), invert(recovered))
    assert (back - frame_points).norm(dim=1).max() < 0.5


def test_noisy_points_give_the_least_squares_fit() -> None:
    generator = torch.Generator().manual_seed(7)
    exact = similarity(1.5, 10.0, 30.0, 40.0)
    source = torch.rand(50, 2, generator=generator) * 200
    target = transform_points(source, exact) + torch.randn(50, 2, generator=generator) * 0.2
    fitted = umeyama(source, target)
    assert torch.allclose(fitted[:, :2], exact[:, :2], atol=0.01) and torch.allclose(fitted, exact, atol=0.3)

    def residual(matrix: torch.Tensor) -> float:
        return float((transform_points(source, matrix) - target).pow(2).sum())

    assert residual(fitted) <= residual(exact)  # least squares: no worse than the truth on noisy data


def test_warp_and_inverse_warp_put_a_pixel_back_where_it_was() -> None:
    frame = torch.zeros((400, 600, 3), dtype=torch.uint8)
    frame[200:204, 300:304] = 255  # a 4x4 marker centred at (301.5, 201.5)
    kps = transform_points(template("arcface_128", 128), similarity(2.0, 15.0, 200.0, 80.0))
    crop, matrix = crop_face(frame, kps, "arcface_128", 128)
    assert crop.shape == (1, 3, 128, 128)
    restored = warp(crop, invert(matrix), (400, 600))[0, 0]
    ys, xs = torch.nonzero(restored > 60, as_tuple=True)
    weights = restored[ys, xs]
    centre = torch.stack([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()
    assert (centre - torch.tensor([301.5, 201.5])).norm() < 0.5


@pytest.mark.parametrize(("tx", "ty"), [(200.0, 150.0), (-30.0, -20.0), (590.0, 430.0), (5000.0, 5000.0)])
def test_warping_only_the_region_under_the_crop_equals_warping_the_frame(tx: float, ty: float) -> None:
    generator = torch.Generator().manual_seed(7)
    frame = torch.randint(0, 256, (480, 640, 3), dtype=torch.uint8, generator=generator)
    matrix = similarity(1.7, 25.0, 0.0, 0.0)
    matrix[:, 2] = torch.tensor([64.0, 64.0]) - matrix[:, :2] @ torch.tensor(
        [tx, ty]
    )  # (tx, ty) → crop centre
    whole = warp(frame.permute(2, 0, 1).unsqueeze(0).float(), matrix, (128, 128))
    assert (warp_frame(frame, matrix, (128, 128)) - whole).abs().max() < 0.05  # float32 grid rounding


def test_warp_samples_exactly_as_kornias_warp_affine() -> None:
    """warp does its matrix algebra on the CPU (no GPU inverse, no host sync) but must sample the same
    pixels as kornia's warp_affine, which it replaced."""
    from kornia.geometry.transform import warp_affine

    from app.faces.alignment import warp

    image = torch.rand(2, 3, 90, 120)
    matrix = torch.tensor([[0.8, -0.3, 12.0], [0.25, 0.9, -7.5]])
    ours = warp(image, matrix, (64, 80))
    theirs = warp_affine(image, matrix.expand(2, 2, 3), (64, 80), mode="bilinear", align_corners=True)
    assert torch.allclose(ours, theirs, atol=1e-4)  # float32 rounding only
