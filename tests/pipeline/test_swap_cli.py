"""`python main.py swap` end to end, as a subprocess: real SCRFD, stand-in swapper, real files.

Images and a generated 3 s H.264 + AAC clip go in; outputs are read back with PyAV and Pillow and
checked for pixels, timing, audio and the synthetic-media label. Bad inputs must fail with a message
naming the file and leave nothing at the output path.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from app.faces.identity import Combine, Identity
from app.media.images import read_image
from app.media.labels import read_label
from tests.support.cli import MAIN, run
from tests.support.media import make_clip, pattern
from tests.support.processing import cli_models
from tests.support.real_models import REAL_SCRFD_ID

STANDINS = ("inswapper_128_fp16", "arcface_w600k_r50", "open_nsfw", "nsfw_yolo_11m")


@pytest.fixture(scope="module")
def setup(test_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("swap-cli")
    catalog = cli_models(test_assets, root / "models", STANDINS)
    astronaut = root / "astronaut.png"
    Image.fromarray(data.astronaut()).save(astronaut)
    clip = make_clip(root / "clip.mp4", seconds=3.0, fps=25, size=(320, 320), image=data.astronaut())
    return {"root": root, "models": root / "models", "catalog": catalog, "astronaut": astronaut, "clip": clip}


def swap(
    setup: dict[str, Path], *args: str, swapper: str = "inswapper_128_fp16@identity"
) -> subprocess.CompletedProcess[str]:
    return run(
        "swap", "--models-dir", str(setup["models"]), "--catalog", str(setup["catalog"]),
        "--detector", REAL_SCRFD_ID, "--swapper", swapper, *args,
    )  # fmt: skip


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


# -- images -------------------------------------------------------------------------------------------


def test_identity_swap_of_an_image_returns_it_and_labels_it(setup: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "out.png"
    result = swap(
        setup, "-s", str(setup["astronaut"]), "-t", str(setup["astronaut"]), "-o", str(output), "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["faces_swapped"] == 1 and report["kind"] == "image"
    assert psnr(read_image(output), read_image(setup["astronaut"])) >= 38.0
    label = read_label(output)
    assert label is not None and label.synthetic and "inswapper_128_fp16@identity" in label.models


def test_flat_swap_leaves_the_background_alone(setup: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "flat.png"
    args = ("-s", str(setup["astronaut"]), "-t", str(setup["astronaut"]), "-o", str(output))
    result = swap(setup, *args, "--feather", "10", swapper="inswapper_128_fp16@flat")
    assert result.returncode == 0, result.stderr
    out, original = read_image(output), read_image(setup["astronaut"])
    changed = (out != original).any(dim=2)
    assert changed[100:160, 220:280].all()  # the face (SCRFD puts it around x 250, y 130)
    assert not changed[220:].any() and not changed[:, :120].any()  # body and the flag side: untouched


def test_watermark_and_jpeg_label(setup: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "marked.jpg"
    args = ("-s", str(setup["astronaut"]), "-t", str(setup["astronaut"]), "-o", str(output), "--watermark")
    result = swap(setup, *args)
    assert result.returncode == 0, result.stderr
    label = read_label(output)
    assert label is not None and label.watermark
    corner = read_image(output)[-40:, -200:].float()
    assert (corner > 200).any()  # white text in the bottom-right corner


def test_content_check_blocks_when_the_analysers_agree(setup: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "blocked.png"
    io = ("-s", str(setup["astronaut"]), "-t", str(setup["astronaut"]), "-o", str(output))
    blocked = swap(setup, *io, "--analysers", "open_nsfw@unsafe", "nsfw_yolo_11m@unsafe")
    assert blocked.returncode == 1 and "content analyser blocked" in blocked.stderr
    assert not output.exists() and leftovers(tmp_path) == []
    passed = swap(setup, *io, "--analysers", "open_nsfw@unsafe", "nsfw_yolo_11m@safe")
    assert passed.returncode == 0, passed.stderr
    assert output.exists()


# -- video --------------------------------------------------------------------------------------------


def test_video_keeps_frames_rate_duration_audio_and_label(setup: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    result = swap(setup, "-s", str(setup["astronaut"]), "-t", str(setup["clip"]), "-o", str(output), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["frames_with_faces"] >= 0.8 * report["frames"]  # the pan leaves the face near its end
    # The start-up's milestones, in the order reached, the first frame last (the bench's timeline).
    steps = list(report["milestones"])
    assert steps[0] == "arguments parsed" and steps[-1] == "first frame written"
    for step in ("job set-up started", "preload started", "models loaded and graphs captured"):
        assert step in steps
    assert steps.index("preload started") < steps.index("models loaded and graphs captured")
    assert report["milestones"]["first frame written"] == report["first_frame_at"]
    with av.open(str(setup["clip"])) as before, av.open(str(output)) as after:
        source, made = before.streams.video[0], after.streams.video[0]
        frames_in = sum(1 for _ in before.decode(video=0))
        frames_out = sum(1 for _ in after.decode(video=0))
        assert abs(frames_out - frames_in) <= 1 and frames_in == 75
        assert made.average_rate == source.average_rate == 25
        assert (
            abs(float(made.duration * made.time_base) - float(source.duration * source.time_base)) <= 1 / 25
        )
        assert len(after.streams.audio) == 1
        audio = after.streams.audio[0]
        assert abs(float(audio.duration * audio.time_base) - 3.0) < 0.1
    label = read_label(output)
    assert label is not None and label.synthetic and label.generator == "Doppel"
    assert leftovers(tmp_path) == []


def test_video_without_audio_on_request(setup: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "silent.mkv"
    result = swap(
        setup, "-s", str(setup["astronaut"]), "-t", str(setup["clip"]), "-o", str(output), "--no-audio"
    )
    assert result.returncode == 0, result.stderr
    with av.open(str(output)) as made:
        assert len(made.streams.audio) == 0 and len(made.streams.video) == 1


# -- bad input ----------------------------------------------------------------------------------------


def _bad(setup: dict[str, Path], tmp_path: Path, source: Path, target: Path, output: Path) -> str:
    result = swap(setup, "-s", str(source), "-t", str(target), "-o", str(output))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert not output.exists()
    assert leftovers(output.parent) == [] if output.parent.exists() else True
    return result.stderr


def test_bad_inputs_fail_clearly_and_write_nothing(setup: dict[str, Path], tmp_path: Path) -> None:
    astronaut, clip = setup["astronaut"], setup["clip"]
    missing = tmp_path / "nobody.png"
    assert f"{missing}" in _bad(setup, tmp_path, missing, astronaut, tmp_path / "a.png")
    assert "does not exist" in _bad(setup, tmp_path, astronaut, tmp_path / "gone.mp4", tmp_path / "b.mp4")

    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    assert str(text) in _bad(setup, tmp_path, astronaut, text, tmp_path / "c.mp4")

    faceless = tmp_path / "card.png"
    Image.fromarray(pattern(240, 320)).save(faceless)
    assert "No face found in target" in _bad(setup, tmp_path, astronaut, faceless, tmp_path / "d.png")
    assert "No face found in source" in _bad(setup, tmp_path, faceless, astronaut, tmp_path / "e.png")

    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    assert str(truncated) in _bad(setup, tmp_path, astronaut, truncated, tmp_path / "f.mp4")

    nowhere = tmp_path / "no-such-folder" / "out.png"
    assert "does not exist" in _bad(setup, tmp_path, astronaut, astronaut, nowhere)
    assert "a video target needs a video output" in _bad(setup, tmp_path, astronaut, clip, tmp_path / "g.png")
    assert "an image target needs an image output" in _bad(
        setup, tmp_path, astronaut, astronaut, tmp_path / "h.mp4"
    )


def test_a_video_without_faces_is_written_through_unless_faces_are_required(
    setup: dict[str, Path], tmp_path: Path
) -> None:
    faceless = make_clip(
        tmp_path / "cards.mp4", seconds=1.0, fps=10, size=(320, 240), image=pattern(240, 320)
    )
    output = tmp_path / "out.mp4"
    result = swap(setup, "-s", str(setup["astronaut"]), "-t", str(faceless), "-o", str(output), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["faces_swapped"] == 0 and report["frames"] == 10
    assert any("no face found in any frame" in note and "written through" in note for note in report["notes"])
    with av.open(str(output)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 10
    refused = tmp_path / "refused.mp4"
    required = swap(
        setup, "-s", str(setup["astronaut"]), "-t", str(faceless), "-o", str(refused), "--require-faces"
    )
    assert required.returncode == 1 and "No face found in any frame" in required.stderr
    assert not refused.exists() and leftovers(tmp_path) == []


def test_bad_flag_values_are_usage_errors(setup: dict[str, Path], tmp_path: Path) -> None:
    io = ("-s", str(setup["astronaut"]), "-t", str(setup["astronaut"]), "-o", str(tmp_path / "x.png"))
    assert swap(setup, *io, "--strength", "3").returncode == 2
    assert swap(setup, *io, "--mask", "elbow").returncode == 2
    assert swap(setup, *io, "--encoder-jobs", "-1").returncode == 2
    result = swap(setup, *io, "--pixel-boost", "200")
    assert result.returncode == 1 and "not 1 to 4 times" in result.stderr


def _segments_done(parts: Path) -> int:
    manifest = parts / "manifest.json"
    try:
        return len(json.loads(manifest.read_text(encoding="utf-8"))["segments"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.parametrize(
    ("seed", "encoding"),
    [(1, ("--encoder-jobs", "1")), (2, ("--encoder-jobs", "3", "--x264-preset", "ultrafast"))],
)
def test_an_export_killed_at_a_random_point_resumes_to_the_same_frames(
    setup: dict[str, Path], tmp_path: Path, seed: int, encoding: tuple[str, ...]
) -> None:
    """SIGKILL mid-export, run again: the result equals an export that never stopped, frame for frame
    (tracking and stabilisation state included: it is checkpointed with each segment), with segments
    encoded one at a time or three at once."""
    rng = random.Random(seed)
    clip = make_clip(tmp_path / "long.mp4", seconds=3.0, fps=25, size=(320, 320), image=data.astronaut())
    engine = ("--segment-frames", "10", "--workers", "2", "--track-interval", "3", "--stabilise", "medium")
    engine += encoding
    io = ("-s", str(setup["astronaut"]), "-t", str(clip))
    whole = tmp_path / "whole.mp4"
    assert swap(setup, *io, "-o", str(whole), *engine, swapper="inswapper_128_fp16@flat").returncode == 0

    output = tmp_path / "resumed.mp4"
    command = [
        sys.executable, str(MAIN), "swap", "--models-dir", str(setup["models"]), "--catalog",
        str(setup["catalog"]), "--detector", REAL_SCRFD_ID, "--swapper", "inswapper_128_fp16@flat",
        *io, "-o", str(output), *engine,
    ]  # fmt: skip
    parts = output.with_name(output.name + ".parts")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        kill_after = rng.randint(1, 4)  # of 7 whole segments: somewhere in the first half or so
        while _segments_done(parts) < kill_after and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        assert _segments_done(parts) >= kill_after, "the export never got that far"
        time.sleep(rng.uniform(0.0, 0.1))  # and somewhere inside the next segment
        assert process.poll() is None, "the export finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert not output.exists()  # killed: nothing passes for the output
    assert parts.is_dir()

    resumed = swap(setup, *io, "-o", str(output), *engine, "--json", swapper="inswapper_128_fp16@flat")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["resumed_from"] > 0 and report["resumed_from"] % 10 == 0
    assert not parts.exists()
    with av.open(str(whole)) as a, av.open(str(output)) as b:
        first = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        second = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
    assert len(first) == len(second) == 75
    assert all(np.array_equal(x, y) for x, y in zip(first, second, strict=True))
    label = read_label(output)
    assert label is not None and label.synthetic


def test_enqueue_then_run_the_queue(setup: dict[str, Path], tmp_path: Path) -> None:
    # the queue lives in the settings folder: this test's own (tests/conftest.py isolates it)
    io = ("-s", str(setup["astronaut"]), "-t", str(setup["astronaut"]))
    first = swap(setup, *io, "-o", str(tmp_path / "one.png"), "--enqueue", "--json")
    assert first.returncode == 0, first.stderr
    swap(setup, *io, "-o", str(tmp_path / "two.png"), "--enqueue")
    listed = run("queue", "list", "--json")
    jobs = json.loads(listed.stdout)
    assert [j["status"] for j in jobs] == ["queued", "queued"]
    assert jobs[0]["id"] == json.loads(first.stdout)["queued"]
    assert not (tmp_path / "one.png").exists()  # queued, not run
    # Each job kept the models folder and catalog it was queued with: the queue runs them without either
    # flag, from another folder.
    ran = run("queue", "run", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "one.png").is_file() and (tmp_path / "two.png").is_file()
    statuses = [j["status"] for j in json.loads(run("queue", "list", "--json").stdout)]
    assert statuses == ["done", "done"]


def test_an_identity_file_is_a_source_and_a_bad_one_is_named(setup: dict[str, Path], tmp_path: Path) -> None:
    person = tmp_path / "ada.identity.json"
    rows = torch.randn(3, 512)
    Identity.from_embeddings("Ada", "arcface_w600k_r50", rows, ["a", "b", "c"], Combine.MEDIAN).save(person)
    target, output = str(setup["astronaut"]), tmp_path / "out.png"
    result = swap(setup, "-s", str(person), "-t", target, "-o", str(output), "--combine", "mean", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["faces_swapped"] == 1
    mixed = swap(setup, "-s", str(person), target, "-t", target, "-o", str(tmp_path / "mixed.png"))
    assert mixed.returncode == 0, mixed.stderr  # an identity file and a photo, combined
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    result = swap(setup, "-s", str(broken), "-t", target, "-o", str(tmp_path / "x.png"))
    assert result.returncode == 1 and "broken.json" in result.stderr and not (tmp_path / "x.png").exists()
    other = tmp_path / "other.json"
    Identity.from_embeddings("O", "arcface_simswap", rows, ["a", "b", "c"], Combine.MEAN).save(other)
    result = swap(setup, "-s", str(other), "-t", target, "-o", str(tmp_path / "y.png"))
    assert result.returncode == 1 and "made with recogniser 'arcface_simswap'" in result.stderr
    assert (
        swap(setup, "-s", str(person), "-t", target, "-o", str(output), "--combine", "mode").returncode == 2
    )
