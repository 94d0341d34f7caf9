"""`joycart serve | worker | migrate | simulate | reconcile | persisted-queries`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import uvicorn
from starlette.applications import Starlette

from joycart import migrate
from joycart.app import create_app
from joycart.bootstrap import Services, build_services
from joycart.config import ConfigError, Settings, resolve_settings
from joycart.embedded_db import EmbeddedPostgres

if TYPE_CHECKING:
    from joycart.http.documents import Document
    from joycart.integrations.razorpay_sim import RazorpaySimulator

log = logging.getLogger("joycart")


def _settings() -> Settings:
    try:
        return resolve_settings(Settings())
    except ConfigError as exc:
        print(f"joycart: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


class Runtime:
    """Database (embedded if none is configured) and the simulated gateway, started in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedPostgres | None = None
        self.simulator: RazorpaySimulator | None = None

    async def database_url(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        self.embedded = EmbeddedPostgres(self.settings.data_dir)
        await asyncio.to_thread(self.embedded.start)
        await self.embedded.ensure_database()
        return self.embedded.url()

    def start_simulator(self, webhook_url: str) -> str | None:
        if not self.settings.uses_simulated_gateway:
            return None
        from joycart.integrations.razorpay_sim import RazorpaySimulator

        assert self.settings.razorpay_key_secret
        assert self.settings.razorpay_webhook_secret
        sim = RazorpaySimulator(
            key_id=self.settings.razorpay_key_id or "",
            key_secret=self.settings.razorpay_key_secret,
            webhook_secret=self.settings.razorpay_webhook_secret,
            webhook_url=webhook_url,
            auto_process_refunds_after=3.0,
        )
        url = sim.start()
        self.simulator = sim
        Path(self.settings.data_dir, "simulator.json").write_text(json.dumps({"url": url}))
        log.info("simulated Razorpay at %s (refunds settle 3 s after they are asked)", url)
        return url

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


async def _services(runtime: Runtime, public_url: str) -> Services:
    url = await runtime.database_url()
    api_url = runtime.start_simulator(f"{public_url}/webhooks/razorpay")
    services = build_services(runtime.settings, database_url=url, razorpay_api_url=api_url)
    await migrate.upgrade(services.engine)
    await _startup_documents(services)
    return services


async def _startup_documents(services: Services) -> None:
    from joycart.http.documents import DocumentError, count_trusted, load_startup_documents

    settings = services.settings
    if settings.persisted_queries_dir is not None:
        try:
            await load_startup_documents(services.sessions, settings.persisted_queries_dir)
        except DocumentError as exc:
            await services.close()
            raise ConfigError(f"JOYCART_PERSISTED_QUERIES_DIR: {exc}") from exc
    if settings.persisted_queries == "trusted" and await count_trusted(services.sessions) == 0:
        log.warning(
            "JOYCART_PERSISTED_QUERIES=trusted and no trusted documents are registered: "
            "every operation will be refused (see `joycart persisted-queries add`)"
        )


def server_config(app: Starlette, settings: Settings, *, host: str, port: int) -> uvicorn.Config:
    """How `serve` runs the app under uvicorn."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        # The client's address (rate limits) comes from X-Forwarded-For only when the peer is
        # one of JOYCART_TRUSTED_PROXIES; any other peer's header is ignored.
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxy_list,
        access_log=False,
        # Subscription messages are small JSON; per-socket deflate state cost ~40 KiB of memory
        # and ~20 % more CPU per message in bench/subscriptions.py, for little saved traffic.
        ws_per_message_deflate=False,
    )


async def _serve(host: str, port: int, with_worker: bool) -> None:
    from joycart.worker import run_forever

    settings = _settings()
    runtime = Runtime(settings)
    public = (
        settings.public_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    )
    try:
        services = await _services(runtime, public)
    except ConfigError as exc:
        runtime.stop()
        print(f"joycart: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    except BaseException:
        runtime.stop()
        raise

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(run_forever(services, stop)) if with_worker else None
        print(f"JoyCart is ready: GraphQL at {public}/graphql", flush=True)
        if not settings.is_production:
            print(f"GraphiQL: open {public}/graphql in a browser", flush=True)
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            await services.close()
            # uvicorn re-raises SIGTERM after shutdown, so stop the embedded server here.
            runtime.stop()

    app = create_app(services, lifespan=lifespan)
    # Everything built so far lives as long as the process: keep it out of the collector's
    # full passes, which otherwise stall every request for the time it takes to scan it all.
    gc.freeze()
    config = server_config(app, settings, host=host, port=port)
    try:
        await uvicorn.Server(config).serve()
    finally:
        runtime.stop()


async def _worker() -> None:
    from joycart.worker import run_forever

    settings = _settings()
    if settings.uses_simulated_gateway and not settings.database_url:
        print(
            "joycart worker: run it beside `joycart serve`, which already runs one", file=sys.stderr
        )
    runtime = Runtime(settings)
    try:
        url = await runtime.database_url()
        services = build_services(settings, database_url=url, razorpay_api_url=_sim_url(settings))
        await migrate.upgrade(services.engine)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_forever(services, stop)
        await services.close()
    finally:
        runtime.stop()


def _sim_url(settings: Settings) -> str | None:
    path = Path(settings.data_dir, "simulator.json")
    if settings.uses_simulated_gateway and path.exists():
        return str(json.loads(path.read_text())["url"])
    return None


async def _migrate() -> None:
    settings = _settings()
    runtime = Runtime(settings)
    try:
        url = await runtime.database_url()
        from joycart.db import make_engine

        engine = make_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()
        print("database is at the latest migration")
    finally:
        runtime.stop()


def _simulate(action: str, target: str) -> int:
    settings = _settings()
    url = _sim_url(settings)
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

    from joycart.resolvers.reconcile import reconcile

    settings = _settings()
    runtime = Runtime(settings)
    try:
        url = await runtime.database_url()
        services = build_services(settings, database_url=url, razorpay_api_url=_sim_url(settings))
        age = refund_age_minutes or settings.refund_reconcile_age_minutes
        report = await reconcile(
            services.sessions, services.gateway, refund_age=timedelta(minutes=age), apply=apply
        )
        await services.close()
    finally:
        runtime.stop()
    print("\n".join(report.lines()))
    if not apply and (report.unrecorded_captures or report.stale_refunds):
        print(
            "report only: run again with --apply to feed Razorpay's answers "
            "through the webhook path"
        )
    return 1 if report.errors else 0


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
    from joycart.db import make_engine, make_sessions
    from joycart.http.documents import add_trusted, list_documents

    runtime = Runtime(settings)
    lines = []
    try:
        engine = make_engine(await runtime.database_url())
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
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parser = argparse.ArgumentParser(prog="joycart", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate, then serve the API with the worker in-process")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-worker", action="store_true", help="run workers apart")
    sub.add_parser("worker", help="the background worker alone")
    sub.add_parser("migrate", help="apply migrations and exit")
    simulate = sub.add_parser("simulate", help="act as the customer at the simulated Razorpay")
    simulate.add_argument("action", choices=["pay", "fail", "process", "fail-refund"])
    simulate.add_argument("target", help="our order id (pay, fail) or a Razorpay refund id")
    rec = sub.add_parser("reconcile", help="compare with Razorpay; --apply fixes through webhooks")
    rec.add_argument("--apply", action="store_true")
    rec.add_argument("--refund-age-minutes", type=int, default=None)
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
        asyncio.run(_serve(args.host, args.port, not args.no_worker))
    elif args.command == "worker":
        asyncio.run(_worker())
    elif args.command == "migrate":
        asyncio.run(_migrate())
    elif args.command == "reconcile":
        return asyncio.run(_reconcile(args.apply, args.refund_age_minutes))
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
