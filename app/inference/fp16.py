"""fp32 model files rewritten to fp16 for the CUDA provider, with ONNX Runtime's own converter.

The converter is ORT's `onnxruntime.transformers.float16` (shipped inside the onnxruntime wheel we
already depend on, maintained with the runtime that will execute its output), with fp32 inputs and
outputs kept (`keep_io_types`), so callers feed and read the same tensors as before. Some graphs do not
load once converted (a type mismatch around reductions or resizes); those are converted a second time
with a wider list of operators kept in fp32. The result is only ever used after the parity gate
(app.inference.parity) passed for it; see app.inference.rewrites.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import onnx

from app.inference.ort import ORT_VERSION
from app.inference.shape_inference import annotate

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the conversion changes: every cached fp16 file is then made again

# Operators ORT's converter keeps in fp32 by default, plus ours: in the second attempt, reductions,
# normalisations and resampling stay fp32 (their accumulations overflow or their types clash in fp16).
_CAUTIOUS = (
    "ReduceMean",
    "ReduceSum",
    "ReduceL2",
    "ReduceSumSquare",
    "Pow",
    "Sqrt",
    "Reciprocal",
    "InstanceNormalization",
    "LayerNormalization",
    "Softmax",
    "Resize",
    "Upsample",
    "Exp",
    "Log",
)
ATTEMPTS: tuple[tuple[str, ...], ...] = ((), _CAUTIOUS)


def converter_id(attempt: int) -> str:
    """Names the converter, its version and the block list: part of every cache key."""
    blocked = ",".join(ATTEMPTS[attempt])
    digest = hashlib.sha256(blocked.encode()).hexdigest()[:8]
    return f"ortfp16-{ORT_VERSION}-f{FORMAT}-b{digest}"


def convert(source: Path, target: Path, attempt: int = 0) -> None:
    """Write the fp16 version of `source` to `target` (replaced atomically)."""
    from onnxruntime.transformers import float16  # only when converting: it pulls in more of ORT

    model = onnx.load(str(source))
    annotate(model)  # the converter's own inference would copy every weight twice (shape_inference.py)
    block = [*float16.DEFAULT_OP_BLOCK_LIST, *ATTEMPTS[attempt]]
    converted = float16.convert_float_to_float16(
        model, keep_io_types=True, op_block_list=block, disable_shape_infer=True
    )
    converted.doc_string = (model.doc_string + f"\nfp16 by Doppel ({converter_id(attempt)})").strip()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    onnx.save(converted, str(partial))
    partial.replace(target)
    log.info("converted %s to fp16 (%s) in %s", source.name, converter_id(attempt), target)
