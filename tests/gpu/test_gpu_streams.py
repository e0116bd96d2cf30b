"""On a real NVIDIA GPU: model calls ordered on the GPU, not by the host (app.inference.streams).

Each model on the CUDA provider computes on a stream of its own and no call waits for the GPU, so what
must hold is the order: inputs made by kernels still queued when the call is made are read only after
those kernels, outputs are ready for the kernels queued after the call, from several threads on streams
of their own, with CUDA graphs and without. And the export's queued download lands the same bytes as a
synchronous copy. Skipped without a usable CUDA provider (CI); run on the lent GPU machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.core.settings import InferenceSettings
from app.inference.discovery import discover
from app.inference.providers import Provider
from app.media.i420 import rgb_to_i420
from tests.gpu.test_gpu_runtime import gpu_models, runtime_for  # noqa: F401 - the shared fixture
from tests.support.threads import run_together

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or not discover()[Provider.CUDA].usable,
    reason="needs an NVIDIA GPU and onnxruntime-gpu with a usable CUDA provider",
)

MODELS = ["inswapper_128", "gfpgan_1.4"]
SLOW_CYCLES = 20_000_000  # ~10 ms of GPU spin before an input's values are written


def _written_late(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor`'s values, in a buffer that holds zeros until a slow kernel queued on the current
    stream has run: a model that read it without waiting for that stream would see the zeros."""
    late = torch.zeros_like(tensor)
    torch.cuda._sleep(SLOW_CYCLES)
    late.copy_(tensor)
    return late


@pytest.mark.parametrize("graphs", ["auto", "off"])
def test_calls_from_several_streams_see_their_inputs_and_give_ready_outputs(
    gpu_models: Path,  # noqa: F811 - the fixture
    tmp_path: Path,
    graphs: str,
) -> None:
    fp32 = {"allow_tf32": False, "precision": "fp32"}
    runtime = runtime_for(gpu_models, tmp_path, settings=InferenceSettings(cuda_graphs=graphs, **fp32))
    runtime.preload(MODELS)
    plain = InferenceSettings(stream_handoff=False, cuda_graphs="off", **fp32)
    synchronous = runtime_for(gpu_models, tmp_path / "sync", settings=plain)
    feeds, expected = {}, {}
    for model_id in MODELS:
        with synchronous.session(model_id, provider="cuda") as reference:
            assert not reference.own_stream
            feeds[model_id] = [reference.example_inputs(seed=s) for s in range(3)]
            expected[model_id] = [reference.run(f)["output"].clone() for f in feeds[model_id]]

    def work(index: int) -> None:
        stream = torch.cuda.Stream()
        results = []
        with torch.cuda.stream(stream):
            for round_ in range(4):
                for model_id in MODELS:
                    item = (index + round_) % 3
                    with runtime.session(model_id) as session:
                        assert session.own_stream
                        assert session.uses_cuda_graph == (graphs == "auto")
                        inputs = {name: _written_late(t) for name, t in feeds[model_id][item].items()}
                        output = session.run(inputs)["output"]
                    results.append((model_id, item, output * 1.0))  # a kernel queued after the call
        stream.synchronize()
        for model_id, item, output in results:
            torch.testing.assert_close(output, expected[model_id][item], rtol=2e-3, atol=2e-3)

    run_together(3, work)


def test_the_queued_download_lands_the_frame() -> None:
    frame = torch.randint(0, 256, (1080, 1920, 3), dtype=torch.uint8, device="cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        late = _written_late(frame)
        host, landed = rgb_to_i420(late).download()
    assert landed is not None and host.data.is_pinned()
    landed.synchronize()
    assert torch.equal(host.data, rgb_to_i420(frame).data.cpu())
