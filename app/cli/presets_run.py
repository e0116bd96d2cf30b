"""What `python main.py presets …` does once its arguments are parsed (app.cli.presets_cmd)."""

from __future__ import annotations

import argparse

from app.cli.output import say, say_json, table
from app.models.context import AppContext
from app.pipeline.presets import Preset, UserPresets, preset_pipeline
from app.pipeline.settings import PipelineSettings, read_settings_file


def _resolve(name: str, ctx: AppContext) -> PipelineSettings:
    if name.lower() in {p.value for p in Preset}:
        store = ctx.store

        def installed(model_id: str) -> bool:
            catalog = store.catalog
            return model_id in catalog and store.status(catalog.get(model_id)).usable

        return preset_pipeline(Preset(name.lower()), installed)[0]
    return UserPresets().load(name)


def list_presets(args: argparse.Namespace, ctx: AppContext) -> int:
    user = UserPresets()
    rows = [[p.value, "built-in"] for p in Preset] + [[name, str(user.path(name))] for name in user.names()]
    if args.json:
        say_json([{"name": name, "where": where} for name, where in rows])
    else:
        table(rows, header=["preset", "where"])
    return 0


def show_preset(args: argparse.Namespace, ctx: AppContext) -> int:
    say(_resolve(args.name, ctx).model_dump_json(indent=2))
    return 0


def save_preset(args: argparse.Namespace, ctx: AppContext) -> int:
    settings = read_settings_file(args.file)
    path = UserPresets().save(args.name, settings)
    if args.json:
        say_json({"name": args.name, "path": str(path)})
    else:
        say(f"Saved preset '{args.name}' to {path}")
    return 0


def delete_preset(args: argparse.Namespace, ctx: AppContext) -> int:
    UserPresets().delete(args.name)
    say(f"Deleted preset '{args.name}'")
    return 0
