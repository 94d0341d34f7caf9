"""`joycart jobs list [--state S] | show ID | retry ID | retry --dead`: the queue for operators."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from joycart.db import Sessions
from joycart.resolvers import jobs, requeue

STATES = ("PENDING", "DONE", "DEAD")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("jobs", help="list, show and retry background jobs")
    commands = parser.add_subparsers(dest="jobs_command", required=True)
    listing = commands.add_parser("list", help="jobs, newest first")
    listing.add_argument("--state", choices=STATES, type=str.upper, default=None)
    listing.add_argument("--limit", type=int, default=100)
    show = commands.add_parser("show", help="one job with its payload and attempt times")
    show.add_argument("id", type=int)
    retry = commands.add_parser("retry", help="make a job (or every DEAD job) due now")
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=int, nargs="?")
    target.add_argument("--dead", action="store_true", help="every DEAD job")


def parse(argv: list[str]) -> argparse.Namespace:
    """The arguments of `joycart jobs ...` (argv starts with "jobs"), as `joycart` parses them."""
    parser = argparse.ArgumentParser(prog="joycart")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


async def run(sessions: Sessions, args: argparse.Namespace, *, now: datetime) -> tuple[int, str]:
    """Run one `joycart jobs` command; returns the exit code and what to print."""
    if args.jobs_command == "list":
        async with sessions() as session:
            rows = await requeue.list_jobs(session, state=args.state, limit=args.limit)
        header = f"{'ID':>8}  {'STATE':7}  {'KIND':22}  {'ATTEMPTS':>8}  {'RUN AT':25}  LAST ERROR"
        lines = [header] + [
            f"{r.id:>8}  {r.status:7}  {r.kind:22}  {r.attempts:>8}  {_when(r.run_at):25}  "
            f"{(r.last_error or '-').splitlines()[0][:80]}"
            for r in rows
        ]
        return 0, "\n".join(lines)
    if args.jobs_command == "show":
        async with sessions() as session:
            row = await requeue.get_job(session, args.id)
        if row is None:
            return 1, f"no job {args.id}"
        return 0, "\n".join(
            [
                f"job {row.id}: {row.kind} {row.status}",
                f"payload: {json.dumps(row.payload, sort_keys=True)}",
                f"attempts: {row.attempts}",
                f"first attempt: {_when(row.first_attempt_at)}",
                f"last attempt: {_when(row.last_attempt_at)}",
                f"due at: {_when(row.run_at)}",
                f"last error: {row.last_error or '-'}",
            ]
        )
    async with sessions() as session, session.begin():
        count = await jobs.retry_now(session, job_id=None if args.dead else args.id, now=now)
    if args.dead:
        return 0, f"{count} DEAD job(s) due again now"
    if count == 0:
        return 1, (
            f"job {args.id} not retried: it does not exist, is DONE, "
            "or a newer pending job already owes the same work"
        )
    return 0, f"job {args.id} due again now (attempts reset)"
