"""Which execution providers are present *and loadable*, and why not when they are not.

ONNX Runtime lists a provider as available whenever the package was built with it, then, at session
creation, quietly runs on the CPU if the provider's libraries (libnvinfer for TensorRT; cuDNN and cuBLAS
for CUDA) will not load. Discovery checks each step itself, so the answer is "TensorRT: libnvinfer.so.10
cannot be opened", not a slow app.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from app.inference.device import device_facts
from app.inference.native_log import capture_native_stderr
from app.inference.ort import onnxruntime
from app.inference.providers import FALLBACK_ORDER, Provider

log = logging.getLogger(__name__)

_PROVIDER_LIBRARY = {Provider.CUDA: "cuda", Provider.TENSORRT: "tensorrt"}


@dataclass(frozen=True)
class ProviderStatus:
    provider: Provider
    usable: bool
    reason: str | None  # why not usable; None when usable
    probed: bool  # a real session was created on it (not just its libraries loaded)

    @property
    def summary(self) -> str:
        how = "usable" if self.usable else f"not usable: {self.reason}"
        return f"{self.provider.label}: {how}"


def _library_path(kind: str) -> Path:
    folder = Path(onnxruntime.__file__).parent / "capi"
    name = (
        f"onnxruntime_providers_{kind}.dll"
        if sys.platform == "win32"
        else f"libonnxruntime_providers_{kind}.so"
    )
    return folder / name


def _load_error(provider: Provider) -> str | None:
    """Why ORT's shared library for this provider cannot be loaded; None when it loads."""
    shared = _library_path("shared")
    library = _library_path(_PROVIDER_LIBRARY[provider])
    if not library.is_file():
        return f"{library.name} is missing from the onnxruntime package"
    try:
        if shared.is_file():
            ctypes.CDLL(str(shared), mode=getattr(ctypes, "RTLD_GLOBAL", 0))
        ctypes.CDLL(str(library))
    except OSError as exc:
        return f"{library.name} cannot be loaded: {exc}"
    return None


def _tiny_model() -> bytes:
    """y = x + 1 on a [1, 8] tensor: enough for a provider to build and run something."""
    from onnx import TensorProto, helper  # only for a probe: onnx takes a second to import

    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])],
        "doppel_provider_probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        initializer=[one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def probe_reason(provider: Provider) -> str | None:
    """Create and run a one-node session on the provider alone; the reason when it does not take."""
    import numpy as np

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 2
    with capture_native_stderr() as native:
        try:
            session = onnxruntime.InferenceSession(
                _tiny_model(), sess_options=options, providers=[provider.ort_name], enable_fallback=0
            )
            session.run(None, {"x": np.zeros((1, 8), np.float32)})
            active = session.get_providers()
        except Exception as exc:  # noqa: BLE001  (ORT raises bare RuntimeError/Fail: any is a reason)
            return f"{provider.label} session failed: {exc}"
    if not active or active[0] != provider.ort_name:
        detail = native.reason() or "onnxruntime gave no reason"
        return f"{provider.label} did not initialise: {detail}"
    return None


def _status(provider: Provider, available: list[str], probe: bool) -> ProviderStatus:
    if provider is Provider.CPU:
        return ProviderStatus(provider, True, None, probe)
    if provider.ort_name not in available:
        package = "onnxruntime-gpu (requirements_cu124.txt or requirements_cu13.txt)"
        return ProviderStatus(
            provider,
            False,
            f"this onnxruntime build has no {provider.label} provider; install {package}",
            False,
        )
    if not device_facts().has_gpu:
        return ProviderStatus(
            provider, False, "no NVIDIA GPU is visible (driver missing or no device)", False
        )
    reason = _load_error(provider)
    if reason is not None:
        # Loading the library by hand can fail where ORT's own loader succeeds (Windows DLL search
        # paths): only a failed real session makes the provider unusable, with the library's reason.
        if probe_reason(provider) is None:
            log.info("%s: the library check failed (%s) but a session works", provider.label, reason)
            return ProviderStatus(provider, True, None, True)
        return ProviderStatus(provider, False, reason, True)
    if probe:
        reason = probe_reason(provider)
        return ProviderStatus(provider, reason is None, reason, True)
    return ProviderStatus(provider, True, None, False)


@functools.cache
def discover(probe: bool = False) -> dict[Provider, ProviderStatus]:
    """Every provider's status, fastest first. `probe` also creates a real session on each GPU
    provider (seconds for TensorRT); without it, a provider whose libraries load counts as usable and
    a failure at model load still falls back with its reason."""
    available = list(onnxruntime.get_available_providers())
    statuses = {p: _status(p, available, probe) for p in FALLBACK_ORDER}
    for status in statuses.values():
        log.debug("provider %s", status.summary)
    return statuses


def usable_providers(probe: bool = False) -> set[Provider]:
    return {p for p, s in discover(probe).items() if s.usable}
