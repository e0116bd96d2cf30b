"""`python main.py queue list|run|retry|remove|clear`: the export queue (`swap … --enqueue` adds to it).

The queue lives in the settings folder (queue.json); jobs another process added meanwhile are kept when
it is saved, so `swap --enqueue` can add while a `queue run` works. A job that was running when the
process stopped runs again, and a video picks up from its finished segments.
"""

# The arguments only: the work is in app.cli.queue_run, imported when a command runs (see app.cli.lazy).

from __future__ import annotations

import argparse
from typing import Any

from app.cli.lazy import LazyHandler


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    queue = subparsers.add_parser("queue", parents=[common], help="the export queue", description=__doc__)
    actions = queue.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="jobs and their state").set_defaults(
        handler=_handler("list_jobs")
    )
    actions.add_parser("run", parents=[common], help="run every queued job, in order").set_defaults(
        handler=_handler("run_jobs")
    )
    for name, helptext, handler in (
        ("retry", "queue a failed or cancelled job again", "retry_job"),
        ("remove", "remove a job", "remove_job"),
    ):
        action = actions.add_parser(name, parents=[common], help=helptext)
        action.add_argument("id")
        action.set_defaults(handler=_handler(handler))
    actions.add_parser("clear", parents=[common], help="remove finished jobs").set_defaults(
        handler=_handler("clear_jobs")
    )


def _handler(function: str) -> LazyHandler:
    return LazyHandler("app.cli.queue_run", function)
