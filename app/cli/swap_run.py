"""What `python main.py swap` does once its arguments are parsed (app.cli.swap_cmd): build the
settings from the preset and the flags, then run or enqueue the job. `live` builds its settings here too.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from pydantic import ValidationError
from tqdm import tqdm

from app.cli.models_cmd import UsageError
from app.cli.output import say, say_json, table
from app.cli.swap_cmd import MASK_PARTS
from app.core import milestones
from app.core.errors import DoppelError
from app.faces.identity import Combine
from app.faces.selection import SelectionMode, SelectionSettings
from app.inference.runtime import InferenceRuntime
from app.models.context import AppContext
from app.pipeline.job_queue import JobQueue, ModelsChoice
from app.pipeline.jobs import EngineOptions, JobReport, SwapJob, run_swap
from app.pipeline.presets import Preset, UserPresets, preset_pipeline
from app.pipeline.settings import AnalysisSettings, PipelineSettings, read_settings_file
from app.processing.content import default_analysers
from app.processing.settings import ProcessingSettings

DEFAULT_MASK_MODELS = {"occluder": "occluder", "xseg": "xseg", "parser": "faceparser_resnet34"}


def _mask_update(parts: list[str] | None) -> dict[str, Any]:
    if not parts:
        return {}
    update: dict[str, Any] = {"box": False, "occluder": None, "xseg": None, "parser": None}
    for part in parts:
        name, _, model_id = part.partition("=")
        if name not in MASK_PARTS:
            raise UsageError(f"--mask: unknown part '{name}' (choose from {', '.join(MASK_PARTS)})")
        if name == "box":
            update["box"] = True
        else:
            update[name] = model_id or DEFAULT_MASK_MODELS[name]
    return update


def _given(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _base_settings(args: argparse.Namespace, runtime: InferenceRuntime) -> tuple[PipelineSettings, list[str]]:
    if args.settings is not None:
        return read_settings_file(args.settings), []
    if args.user_preset is not None:
        return UserPresets().load(args.user_preset), []
    return preset_pipeline(Preset(args.preset), lambda i: _installed(runtime, i), args.swapper)


def _merged(model: Any, update: dict[str, Any]) -> Any:
    return model.model_validate({**model.model_dump(), **update})


def build_settings(args: argparse.Namespace, runtime: InferenceRuntime) -> tuple[PipelineSettings, list[str]]:
    """The preset (or user preset, or settings file), then every flag the user gave on top of it
    (validated by the settings models)."""
    base, notes = _base_settings(args, runtime)
    processing = base.processing
    swap = _merged(
        processing.swap,
        _given(
            swapper=args.swapper, strength=args.strength, passes=args.passes, pixel_boost=args.pixel_boost
        ),
    )
    restore_update = _given(blend=args.restore_blend, fidelity=args.fidelity)
    if args.restorer is not None:
        restore_update["restorer"] = None if args.restorer == "none" else args.restorer
    mask_update = {
        **_mask_update(args.mask),
        **_given(feather=args.feather, padding=args.padding, regions=args.regions),
    }
    processing = ProcessingSettings(
        swap=swap,
        restore=_merged(processing.restore, restore_update),
        mask=_merged(processing.mask, mask_update),
        colour=_merged(processing.colour, _given(strength=args.colour)),
        blend=_merged(processing.blend, _given(edge_smoothing=args.edge_smoothing)),
    )
    analysis = base.analysis
    detection = dataclasses.replace(
        analysis.detection,
        **_given(
            score=args.score,
            nms=args.nms,
            rotation=args.rotation,
            max_faces=args.max_faces,
            size=args.detector_size,
        ),
    )
    landmarker = analysis.landmarker
    if args.landmarker is not None:
        landmarker = None if args.landmarker == "none" else args.landmarker
    selection = SelectionSettings(SelectionMode(args.faces)) if args.faces else analysis.selection
    analysis = AnalysisSettings(
        detector=args.detector or analysis.detector,
        detection=detection,
        landmarker=landmarker,
        selection=selection,
    )
    tracking_update = _given(interval=args.track_interval, stabiliser=args.stabilise)
    if args.no_tracking:
        tracking_update["enabled"] = False
    settings = PipelineSettings(
        analysis=analysis,
        tracking=_merged(base.tracking, tracking_update),
        processing=processing,
    )
    return settings, notes


def _engine_options(args: argparse.Namespace) -> EngineOptions:
    given = _given(
        workers=args.workers,
        queue=args.queue,
        segment_frames=args.segment_frames,
        batch=args.batch,
        encoder_jobs=args.encoder_jobs,
    )
    try:
        return EngineOptions(**given, resume=not args.no_resume, hardware_decode=not args.software_decoder)
    except ValueError as exc:
        raise UsageError(f"swap: {exc}") from None


def _installed(runtime: InferenceRuntime, model_id: str) -> bool:
    catalog = runtime.store.catalog
    return model_id in catalog and runtime.store.status(catalog.get(model_id)).usable


class _Bar:
    def __init__(self, enabled: bool, label: str) -> None:
        self.bar = tqdm(desc=label, unit="frame", file=sys.stderr, dynamic_ncols=True, disable=not enabled)

    def __call__(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()


def swap_faces(args: argparse.Namespace, ctx: AppContext) -> int:
    inference = ctx.settings.inference
    if args.providers:
        inference = inference.model_copy(update={"provider": args.providers})
    # One job, then the process ends: a cold start need not wait for the rewrites before its first frame.
    runtime = InferenceRuntime(ctx.store, inference, defer_rewrites=True)
    try:
        try:
            settings, notes = build_settings(args, runtime)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise UsageError(f"swap: {problems}") from None
        except ValueError as exc:  # a dataclass's own check (detection settings)
            raise UsageError(f"swap: {exc}") from None
        analysers: tuple[str, ...] = ()
        if args.analysers:
            analysers = tuple(args.analysers)
        elif args.content_check:
            analysers = tuple(default_analysers(runtime))
            if not analysers:
                raise DoppelError(
                    "--content-check: no content analyser is installed "
                    "(python main.py models download open_nsfw nsfw_yolo_11m)"
                )
        job = SwapJob(
            sources=tuple(args.source),
            target=args.target,
            output=args.output,
            settings=settings,
            combine=Combine(args.combine) if args.combine else None,
            engine=_engine_options(args),
            watermark=args.watermark,
            analysers=analysers,
            audio=not args.no_audio,
            codec=args.codec,
            crf=args.crf,
            x264_preset=args.x264_preset,
            hardware_encoder=not args.software_encoder,
            require_faces=args.require_faces,
        )
        if args.enqueue:
            absolute = dataclasses.replace(  # the queue may be run from another folder
                job,
                sources=tuple(s.resolve() for s in job.sources),
                target=job.target.resolve(),
                output=job.output.resolve(),
            )
            models = None  # the models of whichever queue runs it
            if args.models_dir is not None or args.catalog:
                models = ModelsChoice(
                    args.models_dir.resolve() if args.models_dir is not None else None,
                    tuple(path.resolve() for path in args.catalog),
                )
            job_id = JobQueue(runtime).add(absolute, models)
            if args.json:
                say_json({"queued": job_id})
            else:
                say(f"Queued {job_id}: {args.target} → {args.output} (`python main.py queue run`)")
            return 0
        bar = _Bar(not args.json and sys.stderr.isatty(), args.target.name)
        try:
            report = run_swap(runtime, job, progress=bar, profile=args.profile)
        finally:
            bar.bar.close()
        report.notes[:0] = notes
        _print_report(report, args.json)
        _settle(runtime, args.json)
    finally:
        runtime.close()
    return 0


def _settle(runtime: InferenceRuntime, as_json: bool) -> None:
    """After a cold start's job (which ran some models from their original files while their faster
    rewrites were written): judge the rewrites now, so the next launch loads them."""
    waiting = runtime.deferred_models()
    if not waiting:
        return
    del as_json  # stderr either way: --json keeps stdout for the report
    sys.stderr.write(
        f"Finishing the faster files of {', '.join(waiting)} for the next runs (once per machine) …\n"
    )
    try:
        runtime.settle_rewrites()
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the job succeeded; the next launch settles
        sys.stderr.write(f"note: not finished ({type(exc).__name__}); the next run finishes them\n")


def _print_report(report: JobReport, as_json: bool) -> None:
    if as_json:
        say_json(
            {
                "output": str(report.output),
                "kind": report.kind,
                "frames": report.frames,
                "frames_with_faces": report.frames_with_faces,
                "faces_swapped": report.faces_swapped,
                "seconds": round(report.seconds, 3),
                "fps": round(report.fps, 2),
                "device": report.device,
                "encoder": report.encoder,
                "encoder_fallback": report.encoder_fallback,
                "models": list(report.models),
                "decoder": report.decoder,
                "workers": report.workers,
                "batch": report.batch,
                "resumed_from": report.resumed_from,
                "tracking": report.tracking,
                "stage_ms": {k: round(v, 3) for k, v in report.stage_ms.items()},
                "profile": [str(p) for p in report.profile],
                "first_frame_at": report.first_frame_at,
                "milestones": milestones.snapshot(),
                "notes": report.notes,
            }
        )
        return
    say(
        f"Wrote {report.output}: {report.faces_swapped} face(s) swapped in {report.frames} frame(s) "
        f"({report.frames_with_faces} with faces), {report.seconds:.1f} s on {report.device}"
    )
    if report.encoder:
        fallback = f" (not NVENC: {report.encoder_fallback})" if report.encoder_fallback else ""
        say(f"Encoder: {report.encoder}{fallback}")
    if report.resumed_from:
        say(f"Resumed at frame {report.resumed_from} (the frames before it were kept from the last run)")
    if report.stage_ms:
        table([[k, f"{v:.2f}"] for k, v in report.stage_ms.items()], header=["stage", "ms per call"])
    for path in report.profile:
        say(f"Profile: {path}")
    for note in report.notes:
        say(f"note: {note}")
