"""`python main.py presets list|show|save|delete`: the built-in presets and the user's own.

A user preset is a PipelineSettings JSON file. `show fast > mine.json`, edit, `save mine mine.json`;
then `swap --user-preset mine …` (or the GUI's preset menu) starts from it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli.output import say, say_json, table
from app.models.context import AppContext
from app.pipeline.presets import Preset, UserPresets, preset_pipeline
from app.pipeline.settings import PipelineSettings, read_settings_file


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    presets = subparsers.add_parser(
        "presets", parents=[common], help="list, show, save and delete settings presets"
    )
    actions = presets.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="built-in and saved presets").set_defaults(
        handler=_list
    )
    show = actions.add_parser("show", parents=[common], help="a preset's settings as JSON")
    show.add_argument("name", help="fast, balanced, quality, or a saved preset")
    show.set_defaults(handler=_show)
    save = actions.add_parser("save", parents=[common], help="save a settings JSON file as a preset")
    save.add_argument("name")
    save.add_argument("file", type=Path, help="PipelineSettings JSON (start from `presets show`)")
    save.set_defaults(handler=_save)
    delete = actions.add_parser("delete", parents=[common], help="delete a saved preset")
    delete.add_argument("name")
    delete.set_defaults(handler=_delete)


def _resolve(name: str, ctx: AppContext) -> PipelineSettings:
    if name.lower() in {p.value for p in Preset}:
        store = ctx.store

        def installed(model_id: str) -> bool:
            catalog = store.catalog
            return model_id in catalog and store.status(catalog.get(model_id)).usable

        return preset_pipeline(Preset(name.lower()), installed)[0]
    return UserPresets().load(name)


def _list(args: argparse.Namespace, ctx: AppContext) -> int:
    user = UserPresets()
    rows = [[p.value, "built-in"] for p in Preset] + [[name, str(user.path(name))] for name in user.names()]
    if args.json:
        say_json([{"name": name, "where": where} for name, where in rows])
    else:
        table(rows, header=["preset", "where"])
    return 0


def _show(args: argparse.Namespace, ctx: AppContext) -> int:
    say(_resolve(args.name, ctx).model_dump_json(indent=2))
    return 0


def _save(args: argparse.Namespace, ctx: AppContext) -> int:
    settings = read_settings_file(args.file)
    path = UserPresets().save(args.name, settings)
    if args.json:
        say_json({"name": args.name, "path": str(path)})
    else:
        say(f"Saved preset '{args.name}' to {path}")
    return 0


def _delete(args: argparse.Namespace, ctx: AppContext) -> int:
    UserPresets().delete(args.name)
    say(f"Deleted preset '{args.name}'")
    return 0
