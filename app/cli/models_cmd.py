"""`python main.py models list|download|verify|path|show`."""

# The arguments only: the work is in app.cli.models_run, imported when a command runs (see app.cli.lazy).

from __future__ import annotations

import argparse
from typing import Any

from app.cli.lazy import LazyHandler
from app.models.choices import Kind


class UsageError(Exception):
    """Bad combination of arguments: the CLI exits with 2."""


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    models = subparsers.add_parser("models", help="list, download, verify and locate models")
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", parents=[common], help="every catalog model and its state on disk")
    listing.add_argument("--kind", choices=[k.value for k in Kind], help="only models of this kind")
    listing.set_defaults(handler=_handler("list_models"))

    download = actions.add_parser(
        "download", parents=[common], help="download models (verified by SHA-256, resumable)"
    )
    download.add_argument("ids", nargs="*", metavar="ID", help="model ids (their requirements come along)")
    group = download.add_mutually_exclusive_group()
    group.add_argument("--default", action="store_true", help="the default set for a first swap")
    group.add_argument("--all", action="store_true", help="every model in the catalog")
    download.add_argument(
        "--trust-unverified",
        action="store_true",
        help="also install models whose SHA-256 no second source confirms",
    )
    download.add_argument("--parallel", type=int, metavar="N", help="simultaneous downloads (default 3)")
    download.set_defaults(handler=_handler("download_models"))

    verify = actions.add_parser("verify", parents=[common], help="re-hash the models on disk")
    verify.add_argument("ids", nargs="*", metavar="ID", help="only these models")
    verify.set_defaults(handler=_handler("verify_models"))

    path = actions.add_parser("path", parents=[common], help="where models live (or one model's file)")
    path.add_argument("id", nargs="?", metavar="ID")
    path.set_defaults(handler=_handler("model_path"))

    show = actions.add_parser("show", parents=[common], help="one model's full catalog entry")
    show.add_argument("id", metavar="ID")
    show.set_defaults(handler=_handler("show_model"))


def _handler(function: str) -> LazyHandler:
    return LazyHandler("app.cli.models_run", function)
