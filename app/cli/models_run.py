"""What `python main.py models …` does once its arguments are parsed (app.cli.models_cmd)."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from app.cli.models_cmd import UsageError
from app.cli.output import human_size, say, say_json, table
from app.cli.progress import DownloadBars
from app.core.errors import DoppelError
from app.models.catalog import ModelEntry
from app.models.context import AppContext
from app.models.download import Downloader, DownloadOptions, DownloadResult
from app.models.store import ModelState, ModelStatus


def _status_json(status: ModelStatus) -> dict[str, Any]:
    data = status.entry.model_dump(mode="json")
    data.update(state=status.state.value, path=str(status.path), bytes_on_disk=status.bytes_on_disk)
    return data


def _licence(entry: ModelEntry) -> str:
    return "non-commercial" if entry.non_commercial else entry.license.name


def list_models(args: argparse.Namespace, ctx: AppContext) -> int:
    entries = [e for e in ctx.catalog if args.kind is None or e.kind == args.kind]
    statuses = [ctx.store.status(e) for e in entries]
    if args.json:
        say_json(
            {
                "models_dir": str(ctx.models_dir.path),
                "models_dir_origin": ctx.models_dir.origin,
                "models": [_status_json(s) for s in statuses],
            }
        )
        return 0
    rows = [
        [
            s.entry.id + (" *" if s.entry.default else ""),
            s.entry.kind.value,
            ("~" if not s.entry.size_exact else "") + human_size(s.entry.size),
            s.state.value,
            "yes" if s.entry.verified else "NO",
            _licence(s.entry),
        ]
        for s in statuses
    ]
    table(rows, ["ID", "KIND", "SIZE", "STATE", "VERIFIED", "LICENCE"])
    present = sum(s.usable for s in statuses)
    say(f"\n{present} of {len(statuses)} present in {ctx.models_dir.path} ({ctx.models_dir.origin}).")
    say("* default set (`models download --default`); ~ size is a rounded published figure.")
    return 0


def _selection(args: argparse.Namespace, ctx: AppContext) -> list[ModelEntry]:
    if args.all:
        return list(ctx.catalog)
    if args.default:
        return ctx.catalog.with_requirements(e.id for e in ctx.catalog.defaults())
    if not args.ids:
        raise UsageError("models download: give model ids, --default or --all")
    return ctx.catalog.with_requirements(args.ids)


def download_models(args: argparse.Namespace, ctx: AppContext) -> int:
    if args.ids and (args.all or args.default):
        raise UsageError("models download: give model ids or --default/--all, not both")
    entries = _selection(args, ctx)
    prefs = ctx.settings.download
    options = DownloadOptions(
        parallel=args.parallel or prefs.parallel,
        retries=prefs.retries,
        timeout_s=prefs.timeout_s,
        trust_unverified=args.trust_unverified,
    )
    with DownloadBars(enabled=not args.json) as bars:
        downloader = Downloader(ctx.store, options, on_event=bars)
        results = _run_cancellable(downloader, entries)
    if args.json:
        say_json([_result_json(r) for r in results])
    else:
        for result in results:
            if not result.ok:
                say(f"{result.model_id}: {result.status}: {result.error}")
        done = sum(r.ok for r in results)
        say(f"{done} of {len(results)} models ready in {ctx.models_dir.path}.")
    return 0 if all(r.ok for r in results) else 1


def _run_cancellable(downloader: Downloader, entries: list[ModelEntry]) -> list[DownloadResult]:
    """Run the batch on a thread so Ctrl-C cancels cleanly (the .part files stay for a resume)."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["results"] = downloader.download_all(entries)
        except DoppelError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=work, name="download-batch")
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        downloader.cancel()
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    results: list[DownloadResult] = outcome["results"]
    return results


def _result_json(result: DownloadResult) -> dict[str, Any]:
    return {
        "id": result.model_id,
        "status": result.status,
        "path": str(result.path) if result.path else None,
        "error": str(result.error) if result.error else None,
    }


def verify_models(args: argparse.Namespace, ctx: AppContext) -> int:
    entries = [ctx.catalog.get(i) for i in args.ids] if args.ids else list(ctx.catalog)
    on_disk = [e for e in entries if ctx.store.path_for(e).is_file()]
    statuses = [ctx.store.status(e, rehash=True) for e in on_disk]
    corrupt = [s for s in statuses if s.state is ModelState.CORRUPT]
    if args.json:
        say_json([{"id": s.entry.id, "state": s.state.value, "path": str(s.path)} for s in statuses])
    else:
        for status in statuses:
            say(f"{status.state.value:9}  {status.entry.id}  {status.path}")
        say(f"{len(statuses)} files checked in {ctx.models_dir.path}: {len(corrupt)} corrupt.")
        for status in corrupt:
            say(
                f"  {status.path} does not match its SHA-256: `models download {status.entry.id}` replaces it"
            )
    return 1 if corrupt else 0


def model_path(args: argparse.Namespace, ctx: AppContext) -> int:
    if args.id:
        path = ctx.store.path_for(ctx.catalog.get(args.id))
        if args.json:
            say_json({"id": args.id, "path": str(path), "exists": path.is_file()})
        else:
            say(str(path))
        return 0
    if args.json:
        say_json({"models_dir": str(ctx.models_dir.path), "origin": ctx.models_dir.origin})
    else:
        say(str(ctx.models_dir.path))
    return 0


def show_model(args: argparse.Namespace, ctx: AppContext) -> int:
    status = ctx.store.status(ctx.catalog.get(args.id))
    if args.json:
        say_json(_status_json(status))
        return 0
    entry = status.entry
    say(f"{entry.name}  [{entry.id}]")
    say(f"  kind/family : {entry.kind.value} / {entry.family}")
    say(f"  file        : {status.path}  ({status.state.value})")
    say(f"  size        : {entry.size} bytes{'' if entry.size_exact else ' (rounded published figure)'}")
    say(f"  sha256      : {entry.sha256}{'' if entry.verified else '  (UNVERIFIED)'}")
    say(f"  licence     : {entry.license.name}{'  (NON-COMMERCIAL)' if entry.non_commercial else ''}")
    for url in entry.urls:
        say(f"  url         : {url}")
    for spec in entry.inputs:
        say(f"  input       : {spec.name or '(by position)'} {list(spec.shape)} {spec.dtype}")
    for spec in entry.outputs:
        say(f"  output      : {spec.name or '(by position)'} {list(spec.shape)} {spec.dtype}")
    say(f"  pixels      : {entry.layout} {entry.colour}, normalisation {entry.normalisation}")
    say(f"  alignment   : {entry.alignment}")
    if entry.requires:
        say(f"  requires    : {', '.join(entry.requires)}")
    if entry.notes:
        say(f"  notes       : {entry.notes}")
    return 0
