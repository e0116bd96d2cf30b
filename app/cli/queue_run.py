"""What `python main.py queue …` does once its arguments are parsed (app.cli.queue_cmd)."""

from __future__ import annotations

import argparse
import sys

from app.cli.output import say, say_json, table
from app.inference.runtime import InferenceRuntime
from app.models.context import AppContext
from app.pipeline.job_queue import JobQueue, JobStatus, QueuedJob


def _queue(ctx: AppContext) -> JobQueue:
    return JobQueue(InferenceRuntime(ctx.store, ctx.settings.inference))


def _row(job: QueuedJob) -> dict[str, object]:
    return {
        "id": job.id,
        "status": job.status.value,
        "target": str(job.job.target),
        "output": str(job.job.output),
        "progress": f"{job.done}/{job.total}" if job.total else "",
        "error": job.error,
        "result": job.result,
    }


def list_jobs(args: argparse.Namespace, ctx: AppContext) -> int:
    jobs = _queue(ctx).jobs()
    if args.json:
        say_json([_row(job) for job in jobs])
    elif not jobs:
        say("The queue is empty (add jobs with `swap … --enqueue`)")
    else:
        table(
            [[j.id, j.status.value, j.job.target.name, str(j.job.output), j.error or ""] for j in jobs],
            header=["id", "status", "target", "output", "error"],
        )
    return 0


def run_jobs(args: argparse.Namespace, ctx: AppContext) -> int:
    queue = _queue(ctx)

    def report(job: QueuedJob) -> None:
        if job.status is JobStatus.RUNNING and job.total and not args.json:
            sys.stderr.write(f"\r{job.id} {job.job.target.name}: {job.done}/{job.total} frames")
        elif job.status is not JobStatus.RUNNING and not args.json:
            sys.stderr.write(f"\r{job.id} {job.job.target.name}: {job.status.value}\n")

    queue.on_change = report
    try:
        finished = queue.run_all()
    finally:
        queue.runtime.close()
    if args.json:
        say_json([_row(job) for job in finished])
    for job in finished:
        if job.status is JobStatus.FAILED and not args.json:
            say(f"{job.id}: failed: {job.error}")
    return 1 if any(job.status is JobStatus.FAILED for job in finished) else 0


def retry_job(args: argparse.Namespace, ctx: AppContext) -> int:
    _queue(ctx).retry(args.id)
    say(f"Queued {args.id} again")
    return 0


def remove_job(args: argparse.Namespace, ctx: AppContext) -> int:
    _queue(ctx).remove(args.id)
    say(f"Removed {args.id}")
    return 0


def clear_jobs(args: argparse.Namespace, ctx: AppContext) -> int:
    _queue(ctx).clear_finished()
    say("Removed the finished jobs")
    return 0
