"""Does a rewritten model file compute what the original does? Cosine similarity on realistic inputs.

Every rewrite the runtime makes of a model file (fp16 conversion, a dynamic batch axis) is used only after
it answers like the original on the same inputs. Inputs are shaped like real ones rather than uniform
noise: image inputs are smooth random pictures in 0..255, normalised as the catalog says (what a face
crop looks like to the model, in range and in spatial correlation); vector inputs are unit vectors (what
identity latents are). Each output of each sample is compared by cosine similarity; a rewrite passes
when the mean over samples is at least `mean_at_least` and the worst at least `min_at_least` for every
output (by default the thresholds set for ArcFace identities: 0.995 and 0.99), and every value is finite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional

from app.models.catalog import ModelEntry

Tensors = dict[str, torch.Tensor]
Runner = Callable[[Tensors], Tensors]

MEAN_AT_LEAST = 0.995
MIN_AT_LEAST = 0.99
SAMPLES = 6


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype


@dataclass(frozen=True)
class Parity:
    passed: bool
    cosine_mean: float  # the lowest per-output mean
    cosine_min: float  # the lowest single sample
    worst_output: str
    reason: str


def realistic_inputs(entry: ModelEntry, specs: Sequence[InputSpec], seed: int) -> Tensors:
    """One sample of inputs for `entry`, on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    feeds: Tensors = {}
    for spec in specs:
        if spec.dtype.is_floating_point and len(spec.shape) == 4:
            feeds[spec.name] = _picture(entry, spec.shape, generator).to(spec.dtype)
        elif spec.dtype.is_floating_point and len(spec.shape) == 2:
            vectors = torch.randn(spec.shape, generator=generator)
            feeds[spec.name] = functional.normalize(vectors, dim=-1).to(spec.dtype)
        elif spec.dtype.is_floating_point:
            feeds[spec.name] = torch.rand(spec.shape, generator=generator).to(spec.dtype)
        elif spec.dtype == torch.bool:
            feeds[spec.name] = torch.zeros(spec.shape, dtype=torch.bool)
        else:
            feeds[spec.name] = torch.randint(0, 2, spec.shape, generator=generator, dtype=spec.dtype)
    return feeds


def _picture(entry: ModelEntry, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Smooth random images in 0..255 with fine detail on top, normalised like the model's input."""
    nhwc = entry.layout == "NHWC"
    batch, channels, height, width = (
        (shape[0], shape[3], shape[1], shape[2]) if nhwc else (shape[0], shape[1], shape[2], shape[3])
    )
    coarse = torch.rand((batch, channels, 6, 6), generator=generator) * 255.0
    image = functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    image = (image + torch.randn(image.shape, generator=generator) * 8.0).clamp(0.0, 255.0)
    norm = entry.normalisation
    if norm is not None and len(norm.mean) == channels:
        mean = torch.tensor(norm.mean).view(1, channels, 1, 1)
        std = torch.tensor(norm.std).view(1, channels, 1, 1)
        image = (image - mean) / std
    else:
        image = image / 255.0
    return image.permute(0, 2, 3, 1).contiguous() if nhwc else image


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    scale = float(a.norm() * b.norm())
    if scale == 0.0:
        return 1.0 if torch.equal(a, b) else 0.0
    return float(a @ b) / scale


def compare(
    entry: ModelEntry,
    specs: Sequence[InputSpec],
    reference: Runner,
    candidate: Runner,
    *,
    samples: int = SAMPLES,
    mean_at_least: float = MEAN_AT_LEAST,
    min_at_least: float = MIN_AT_LEAST,
    to_inputs: Callable[[Tensors], Tensors] = lambda feeds: feeds,
) -> Parity:
    """Run both on the same `samples` inputs and judge the candidate. `to_inputs` moves a sample
    where the runners want it (a GPU)."""
    cosines: dict[str, list[float]] = {}
    for seed in range(samples):
        feeds = to_inputs(realistic_inputs(entry, specs, seed))
        want, got = reference(feeds), candidate(feeds)
        for name, expected in want.items():
            value = got[name]
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                return Parity(False, 0.0, 0.0, name, f"output '{name}' has non-finite values")
            cosines.setdefault(name, []).append(_cosine(value.cpu(), expected.cpu()))
    means = {name: sum(values) / len(values) for name, values in cosines.items()}
    worst = min(means, key=lambda name: means[name])
    lowest = min(min(values) for values in cosines.values())
    passed = all(m >= mean_at_least for m in means.values()) and lowest >= min_at_least
    verdict = "matches" if passed else "differs from"
    reason = (
        f"{verdict} the original: cosine mean {means[worst]:.5f} (needs {mean_at_least}), "
        f"min {lowest:.5f} (needs {min_at_least}) over {samples} realistic inputs"
    )
    return Parity(passed, means[worst], lowest, worst, reason)
