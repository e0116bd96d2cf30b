"""`python main.py presets list|show|save|delete`: the built-in presets and the user's own.

A user preset is a PipelineSettings JSON file. `show fast > mine.json`, edit, `save mine mine.json`;
then `swap --user-preset mine …` (or the GUI's preset menu) starts from it.
"""

# The arguments only: the work is in app.cli.presets_run, imported when a command runs (see app.cli.lazy).

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli.lazy import LazyHandler


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    presets = subparsers.add_parser(
        "presets", parents=[common], help="list, show, save and delete settings presets"
    )
    actions = presets.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="built-in and saved presets").set_defaults(
        handler=_handler("list_presets")
    )
    show = actions.add_parser("show", parents=[common], help="a preset's settings as JSON")
    show.add_argument("name", help="fast, balanced, quality, or a saved preset")
    show.set_defaults(handler=_handler("show_preset"))
    save = actions.add_parser("save", parents=[common], help="save a settings JSON file as a preset")
    save.add_argument("name")
    save.add_argument("file", type=Path, help="PipelineSettings JSON (start from `presets show`)")
    save.set_defaults(handler=_handler("save_preset"))
    delete = actions.add_parser("delete", parents=[common], help="delete a saved preset")
    delete.add_argument("name")
    delete.set_defaults(handler=_handler("delete_preset"))


def _handler(function: str) -> LazyHandler:
    return LazyHandler("app.cli.presets_run", function)
