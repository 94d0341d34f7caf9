"""`joycart serve | worker | migrate | simulate | reconcile | jobs | persisted-queries`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from joycart.config import ConfigError, Settings, resolve_settings
from joycart.observability import logs
from joycart.runtime import Runtime, simulator_url

if TYPE_CHECKING:
    from joycart.http.documents import Document


def _settings() -> Settings:
    try:
        settings = resolve_settings(Settings())
    except ConfigError as exc:
        print(f"joycart: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    logs.configure(json=settings.json_logs, level=settings.log_level)
    return settings


def _serve(host: str, port: int, processes: int, with_worker: bool) -> None:
    from joycart.observability.processes import prepare_metrics_dir, remove_metrics_dir

    settings = _settings()
    # Before anything imports prometheus-client: it picks multiprocess storage at import time.
    metrics_dir, owned = prepare_metrics_dir()
    try:
        from joycart import serving

        if processes == 1:
            asyncio.run(
                serving.serve_one(
                    settings,
                    host,
                    port,
                    with_worker,
                    at_exit=lambda: remove_metrics_dir(metrics_dir, owned),
                )
            )
        else:
            serving.serve_many(settings, host, port, processes, with_worker)
    except ConfigError as exc:
        print(f"joycart: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    finally:
        remove_metrics_dir(metrics_dir, owned)


async def _worker() -> None:
    import signal

    from joycart import migrate
    from joycart.bootstrap import build_services
    from joycart.worker import run_forever

    settings = _settings()
    if settings.uses_simulated_gateway and not settings.database_url:
        print(
            "joycart worker: run it beside `joycart serve`, which already runs one", file=sys.stderr
        )
    runtime = Runtime(settings)
    try:
        url = await runtime.database_url()
        services = build_services(
            settings, database_url=url, razorpay_api_url=simulator_url(settings)
        )
        await migrate.upgrade(services.engine)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_forever(services, stop)
        await services.close()
    finally:
        runtime.stop()


async def _migrate() -> None:
    from joycart import migrate
    from joycart.db import make_engine

    settings = _settings()
    runtime = Runtime(settings)
    try:
        url = await runtime.database_url()
        engine = make_engine(url, pooler=settings.database_pooler)
        await migrate.upgrade(engine)
        await engine.dispose()
        print("database is at the latest migration")
    finally:
        runtime.stop()


def _simulate(action: str, target: str) -> int:
    settings = _settings()
    url = simulator_url(settings)
    if url is None:
        print("no simulated gateway: start `joycart serve` without Razorpay keys", file=sys.stderr)
        return 2
    if action == "pay":
        response = httpx.post(f"{url}/_sim/pay", json={"receipt": target}, timeout=15)
    elif action == "fail":
        response = httpx.post(f"{url}/_sim/fail", json={"receipt": target}, timeout=15)
    else:
        response = httpx.post(f"{url}/_sim/refunds/{target}/{action}", timeout=15)
    body = response.json()
    entity = body.get("payment") or body.get("refund") or {}
    print(f"{entity.get('id', '?')}: {entity.get('status', body.get('error', '?'))}")
    for delivery in body.get("deliveries", []):
        print(f"  webhook {delivery['event']} -> HTTP {delivery['status']}")
    return 0 if response.is_success else 1


async def _reconcile(apply: bool, refund_age_minutes: int | None) -> int:
    from datetime import timedelta

    from joycart.bootstrap import build_services
    from joycart.resolvers.reconcile import reconcile

    settings = _settings()
    runtime = Runtime(settings)
    try:
        url = await runtime.database_url()
        services = build_services(
            settings, database_url=url, razorpay_api_url=simulator_url(settings)
        )
        age = refund_age_minutes or settings.refund_reconcile_age_minutes
        report = await reconcile(
            services.sessions, services.gateway, refund_age=timedelta(minutes=age), apply=apply
        )
        await services.close()
    finally:
        runtime.stop()
    print("\n".join(report.lines()))
    if report.dead_jobs:
        print("DEAD jobs are owed work that stopped retrying: `joycart jobs retry --dead`")
    if not apply and (report.unrecorded_captures or report.stale_refunds):
        print(
            "report only: run again with --apply to feed Razorpay's answers "
            "through the webhook path"
        )
    return 1 if report.errors else 0


async def _jobs(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from joycart import cli_jobs
    from joycart.db import make_engine, make_sessions

    settings = _settings()
    runtime = Runtime(settings)
    try:
        engine = make_engine(await runtime.database_url(), pooler=settings.database_pooler)
        code, output = await cli_jobs.run(make_sessions(engine), args, now=datetime.now(UTC))
        await engine.dispose()
    finally:
        runtime.stop()
    print(output)
    return code


def _positive(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
    return number


def _persisted_queries(command: str, paths: list[Path]) -> int:
    from joycart.http.documents import DocumentError, check_documents, read_documents

    settings = _settings()
    try:
        documents = [document for path in paths for document in read_documents(path)]
        check_documents(documents)
    except DocumentError as exc:
        print(f"joycart persisted-queries: {exc} (nothing was registered)", file=sys.stderr)
        return 1
    # An embedded database that `joycart serve` is running stays up after this command.
    shared = Path(settings.data_dir, "postgres", "postmaster.pid").exists()
    lines = asyncio.run(_store_documents(settings, command, documents, keep_database=shared))
    print("\n".join(lines))
    return 0


async def _store_documents(
    settings: Settings, command: str, documents: list[Document], *, keep_database: bool
) -> list[str]:
    from joycart import migrate
    from joycart.db import make_engine, make_sessions
    from joycart.http.documents import add_trusted, list_documents

    runtime = Runtime(settings)
    lines = []
    try:
        engine = make_engine(await runtime.database_url(), pooler=settings.database_pooler)
        await migrate.upgrade(engine)
        sessions = make_sessions(engine)
        if command == "add":
            hashes = await add_trusted(sessions, documents)
            for document, sha256 in zip(documents, hashes, strict=True):
                lines.append(f"{sha256}  trusted  {document.source}")
            lines.append(f"{len(documents)} trusted documents registered")
        else:
            for stored in await list_documents(sessions):
                kind = "trusted" if stored.trusted else "client "
                first = stored.document.strip().splitlines()[0][:60] if stored.document else ""
                created = stored.created_at.isoformat(timespec="seconds")
                lines.append(f"{stored.sha256}  {kind}  {created}  {stored.source}  {first}")
        await engine.dispose()
    finally:
        if keep_database:
            runtime.embedded = None
        runtime.stop()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="joycart", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate, then serve the API with the worker in-process")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="API processes sharing the port (the background worker still runs once)",
    )
    serve.add_argument("--no-worker", action="store_true", help="run workers apart")
    sub.add_parser("worker", help="the background worker alone")
    sub.add_parser("migrate", help="apply migrations and exit")
    simulate = sub.add_parser("simulate", help="act as the customer at the simulated Razorpay")
    simulate.add_argument("action", choices=["pay", "fail", "process", "fail-refund"])
    simulate.add_argument("target", help="our order id (pay, fail) or a Razorpay refund id")
    rec = sub.add_parser("reconcile", help="compare with Razorpay; --apply fixes through webhooks")
    rec.add_argument("--apply", action="store_true")
    rec.add_argument("--refund-age-minutes", type=int, default=None)
    from joycart import cli_jobs

    cli_jobs.add_parser(sub)
    persisted = sub.add_parser(
        "persisted-queries", help="trusted documents: register them ahead of time, list them"
    )
    persisted_sub = persisted.add_subparsers(dest="persisted_command", required=True)
    add = persisted_sub.add_parser(
        "add", help="register .graphql files, manifests or directories of them as trusted"
    )
    add.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR")
    persisted_sub.add_parser("list", help="every stored document: hash, kind, source")
    args = parser.parse_args(argv)
    if args.command == "serve":
        _serve(args.host, args.port, args.workers, not args.no_worker)
    elif args.command == "worker":
        asyncio.run(_worker())
    elif args.command == "migrate":
        asyncio.run(_migrate())
    elif args.command == "reconcile":
        return asyncio.run(_reconcile(args.apply, args.refund_age_minutes))
    elif args.command == "jobs":
        return asyncio.run(_jobs(args))
    elif args.command == "persisted-queries":
        paths = args.paths if args.persisted_command == "add" else []
        return _persisted_queries(args.persisted_command, paths)
    elif args.command == "simulate":
        action = "fail" if args.action == "fail-refund" else args.action
        if args.action in ("pay", "fail"):
            return _simulate(args.action, args.target)
        return _simulate(action, args.target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
