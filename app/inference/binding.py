"""Bridges between torch tensors and ONNX Runtime's I/O binding: dtypes, devices, raw pointers.

Inputs are bound by pointer (device memory on CUDA, host memory on CPU), so ORT reads the caller's
tensors where they lie. Outputs whose shape is known before the run are allocated as torch tensors and
bound the same way, so ORT writes straight into them; outputs whose size depends on the data are left to
ORT to allocate and then copied once into torch on the same device (never through the host).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from app.inference.ort import onnxruntime

# ONNX Runtime's type strings ("tensor(float)") to torch and numpy dtypes.
_ORT_TYPES: dict[str, tuple[torch.dtype, type[np.generic]]] = {
    "tensor(float)": (torch.float32, np.float32),
    "tensor(float16)": (torch.float16, np.float16),
    "tensor(double)": (torch.float64, np.float64),
    "tensor(int64)": (torch.int64, np.int64),
    "tensor(int32)": (torch.int32, np.int32),
    "tensor(int8)": (torch.int8, np.int8),
    "tensor(uint8)": (torch.uint8, np.uint8),
    "tensor(bool)": (torch.bool, np.bool_),
}

# numpy's array-interface type strings, for viewing ORT-owned memory without a copy.
_TYPESTR = {
    torch.float32: "<f4",
    torch.float16: "<f2",
    torch.float64: "<f8",
    torch.int64: "<i8",
    torch.int32: "<i4",
    torch.int8: "|i1",
    torch.uint8: "|u1",
    torch.bool: "|b1",
}


class UnsupportedTensorTypeError(ValueError):
    pass


def torch_dtype(ort_type: str) -> torch.dtype:
    try:
        return _ORT_TYPES[ort_type][0]
    except KeyError:
        raise UnsupportedTensorTypeError(f"tensor type {ort_type} is not supported") from None


def numpy_dtype(ort_type: str) -> type[np.generic]:
    try:
        return _ORT_TYPES[ort_type][1]
    except KeyError:
        raise UnsupportedTensorTypeError(f"tensor type {ort_type} is not supported") from None


@dataclass(frozen=True)
class OrtDevice:
    """Where a session's tensors live, in ORT's words and torch's."""

    kind: str  # "cpu" or "cuda"
    index: int

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.kind, self.index) if self.kind == "cuda" else torch.device("cpu")


def _bind(bind: Any, name: str, tensor: torch.Tensor, ort_type: str) -> None:
    if not tensor.is_contiguous():
        raise ValueError(f"tensor '{name}' must be contiguous to be bound")
    device = tensor.device
    bind(name, device.type, device.index or 0, numpy_dtype(ort_type), list(tensor.shape), tensor.data_ptr())


def bind_input(binding: Any, name: str, tensor: torch.Tensor, ort_type: str) -> None:
    _bind(binding.bind_input, name, tensor, ort_type)


def bind_output(binding: Any, name: str, tensor: torch.Tensor, ort_type: str) -> None:
    _bind(binding.bind_output, name, tensor, ort_type)


def bind_output_to_device(binding: Any, name: str, device: OrtDevice) -> None:
    """Let ORT allocate this output on the device (its shape is only known after the run)."""
    binding.bind_output(name, device.kind, device.index)


class _CudaArray:
    """Just enough of __cuda_array_interface__ for torch.as_tensor to view ORT's device memory."""

    def __init__(self, pointer: int, shape: tuple[int, ...], typestr: str) -> None:
        self.__cuda_array_interface__ = {
            "shape": shape,
            "typestr": typestr,
            "data": (pointer, False),
            "version": 2,
        }


def to_torch(value: onnxruntime.OrtValue, ort_type: str, device: OrtDevice) -> torch.Tensor:
    """An ORT-allocated output as a torch tensor of its own, on the session's device."""
    dtype = torch_dtype(ort_type)
    shape = tuple(int(d) for d in value.shape())
    if value.device_name().lower() == "cpu":
        return torch.from_numpy(np.array(value.numpy(), copy=True))
    if 0 in shape:
        return torch.empty(shape, dtype=dtype, device=device.torch_device)
    view = torch.as_tensor(_CudaArray(value.data_ptr(), shape, _TYPESTR[dtype]), device=device.torch_device)
    return view.clone()  # own the memory: ORT frees its buffer with the binding
