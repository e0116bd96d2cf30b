"""The one place that imports ONNX Runtime.

torch is imported first on purpose: on NVIDIA installs its wheels carry the CUDA and cuDNN libraries,
and once they are loaded ONNX Runtime's CUDA provider finds them (the route ORT documents). ORT's own
console logging is turned down to errors: Doppel reports what matters in its own words.
"""

# ruff: noqa: I001  (torch must be imported before onnxruntime)
from __future__ import annotations

import torch  # noqa: F401  (load order: see above)

import onnxruntime

onnxruntime.set_default_logger_severity(3)

ORT_VERSION: str = onnxruntime.__version__

__all__ = ["ORT_VERSION", "onnxruntime"]
