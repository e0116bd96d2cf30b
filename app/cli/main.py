"""The command line: no arguments starts the GUI; sub-commands run the engine headless.

Exit codes: 0 success, 1 a user-facing error (the message says what and where), 2 bad usage.

Parsing imports nothing heavy: `--help` (which exits while parsing) and a bad option answer at once.
Each command's module holds its arguments only and loads its work when it runs (app.cli.lazy).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__
from app.cli import (
    bench_cmd,
    detect_cmd,
    live_cmd,
    models_cmd,
    presets_cmd,
    queue_cmd,
    runtime_cmd,
    swap_cmd,
)
from app.core.errors import DoppelError

log = logging.getLogger("app")

EXIT_ERROR = 1  # 0: success; 2: bad usage (argparse)


def _common_options() -> argparse.ArgumentParser:
    """Every command's options. Those the top-level parser also takes (before the command) default to
    SUPPRESS here: a sub-command's own default would otherwise overwrite `main.py -v COMMAND`'s value."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--models-dir", type=Path, metavar="DIR", default=argparse.SUPPRESS, help="folder holding the models"
    )
    common.add_argument(
        "--catalog",
        type=Path,
        action="append",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="extra catalog file (JSON entries; same ids replace built-ins); repeatable",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging on stderr"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Doppel: real-time face swapping. Without a command, the desktop app starts.",
    )
    parser.add_argument("--version", action="version", version=f"Doppel {__version__}")
    parser.add_argument(
        "--screenshot", type=Path, metavar="OUT.png", help="render the main window to a PNG and exit"
    )
    parser.add_argument("--open", type=Path, metavar="MEDIA", help="open an image or a video in the app")
    parser.add_argument("--models-dir", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--catalog", type=Path, action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    gui = commands.add_parser("gui", parents=[common], help="start the desktop app (the default)")
    gui.set_defaults(handler=_run_gui)
    models_cmd.add_parser(commands, common)
    runtime_cmd.add_parsers(commands, common)
    detect_cmd.add_parser(commands, common)
    swap_cmd.add_parser(commands, common)
    presets_cmd.add_parser(commands, common)
    live_cmd.add_parser(commands, common)
    bench_cmd.add_parser(commands, common)
    queue_cmd.add_parser(commands, common)
    return parser


def _run_gui(args: argparse.Namespace, ctx: object) -> int:
    from app.ui.launch import run_gui  # Qt loads only when the GUI is wanted

    code: int = run_gui(
        models_dir=args.models_dir,
        extra_catalogs=args.catalog,
        open_media=getattr(args, "open", None),
        screenshot=getattr(args, "screenshot", None),
    )
    return code


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv or ["gui"])
    _configure_logging(args.verbose)
    try:
        if args.command in ("gui", None):
            return _run_gui(args, None)
        from app.core.milestones import mark
        from app.models.context import build_context  # settings and catalog: after parsing

        mark("arguments parsed")
        ctx = build_context(args.models_dir, args.catalog)
        mark("settings and catalog read")
        code: int = args.handler(args, ctx)
        return code
    except models_cmd.UsageError as exc:
        parser.error(str(exc))  # exits with 2
    except DoppelError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
