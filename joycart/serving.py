"""`joycart serve`: one API process, or N behind one port, with exactly one background worker.

With `--workers 1` everything runs in one process: uvicorn serves the app and the background
worker is a task beside it.

With `--workers N` the parent process starts the embedded database (if any), the simulated
gateway (in development) and applies the migrations, once, before any API process exists. It
then binds the port, one `SO_REUSEPORT` socket per API process so the kernel spreads connections
over them, and hands them to uvicorn's multiprocess supervisor (`joycart.supervisor`). We build
on uvicorn's rather than our own or gunicorn's: it is already a dependency, it restarts an API
process that dies, and it passes SIGTERM/SIGINT on and waits for each process to drain. The
background worker runs once, on a thread of the parent, never in the API processes.

Stopping (SIGTERM or Ctrl-C): the listening socket is closed so no new connection is accepted;
each API process finishes the requests it has (up to JOYCART_DRAIN_SECONDS, 20 s by default);
then the background worker finishes its current job and hands its other claimed jobs back; then
the embedded database stops. Nothing is left running.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette

from joycart import migrate
from joycart.app import create_app
from joycart.bootstrap import build_services
from joycart.config import ConfigError, Settings, resolve_settings
from joycart.db import Sessions
from joycart.observability import logs, metrics
from joycart.runtime import Runtime
from joycart.supervisor import Supervisor, bind_sockets

log = logging.getLogger("joycart")

APP_FACTORY = "joycart.serving:api_process_app"


def public_url(settings: Settings, host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return settings.public_url or f"http://{shown}:{port}"


def server_config(app: object, settings: Settings, **kwargs: object) -> uvicorn.Config:
    """How `serve` runs the app under uvicorn (tests build theirs with it too)."""
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_level=settings.log_level.lower(),
        log_config=None,  # our logging (observability.logs) formats uvicorn's records too
        access_log=False,  # RequestContext writes one line per request, with its request id
        proxy_headers=False,  # applied inside the app, after the request-id check (see app.py)
        timeout_graceful_shutdown=int(settings.drain_seconds),
        # Subscription messages are small JSON; per-socket deflate state cost ~40 KiB of memory
        # and ~20 % more CPU per message in bench/subscriptions.py, for little saved traffic.
        ws_per_message_deflate=False,
        **kwargs,  # type: ignore[arg-type]
    )


async def _prepare(runtime: Runtime, public: str) -> tuple[str, str | None]:
    """Database and simulator up, migrations applied, trusted documents registered: what every
    later process relies on, done once."""
    from joycart.db import make_engine, make_sessions

    url = await runtime.database_url()
    api_url = runtime.start_simulator(f"{public}/webhooks/razorpay")
    engine = make_engine(url, pooler=runtime.settings.database_pooler)
    try:
        await migrate.upgrade(engine)
        await _startup_documents(runtime.settings, make_sessions(engine))
    finally:
        await engine.dispose()
    return url, api_url


async def _startup_documents(settings: Settings, sessions: Sessions) -> None:
    from joycart.http.documents import DocumentError, count_trusted, load_startup_documents

    if settings.persisted_queries_dir is not None:
        try:
            await load_startup_documents(sessions, settings.persisted_queries_dir)
        except DocumentError as exc:
            raise ConfigError(f"JOYCART_PERSISTED_QUERIES_DIR: {exc}") from exc
    if settings.persisted_queries == "trusted" and await count_trusted(sessions) == 0:
        log.warning(
            "JOYCART_PERSISTED_QUERIES=trusted and no trusted documents are registered: "
            "every operation will be refused (see `joycart persisted-queries add`)"
        )


def _freeze_startup_objects() -> None:
    """Everything built before serving lives as long as the process: keep it out of the
    collector's full passes, which otherwise stall every request while they scan it all."""
    gc.freeze()


def _ready(public: str, settings: Settings, processes: int) -> None:
    if processes == 1:
        print(f"JoyCart is ready: GraphQL at {public}/graphql", flush=True)
    else:
        print(f"JoyCart is starting {processes} API processes: GraphQL at {public}/graphql")
    if not settings.is_production:
        print(f"GraphiQL: open {public}/graphql in a browser", flush=True)


# --- one process ---------------------------------------------------------------------------


async def serve_one(
    settings: Settings,
    host: str,
    port: int,
    with_worker: bool,
    at_exit: Callable[[], None] = lambda: None,
) -> None:
    """`at_exit` runs last in the lifespan: uvicorn re-raises SIGTERM after it, so code after
    `serve_one` returns may never run."""
    from joycart.worker import run_forever

    runtime = Runtime(settings)
    public = public_url(settings, host, port)
    try:
        url, api_url = await _prepare(runtime, public)
        services = build_services(settings, database_url=url, razorpay_api_url=api_url)
    except BaseException:
        runtime.stop()
        raise

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(run_forever(services, stop)) if with_worker else None
        _freeze_startup_objects()
        _ready(public, settings, 1)
        try:
            yield
        finally:
            # uvicorn has stopped accepting and drained the requests in flight by now.
            stop.set()
            if task is not None:
                await task
            await services.close()
            metrics.forget_this_process()
            # uvicorn re-raises SIGTERM after shutdown, so stop the embedded server here.
            runtime.stop()
            at_exit()

    config = server_config(create_app(services, lifespan=lifespan), settings, host=host, port=port)
    try:
        await uvicorn.Server(config).serve()
    finally:
        runtime.stop()


# --- N processes ---------------------------------------------------------------------------


def api_process_app() -> Starlette:
    """The app of one API process under the supervisor (uvicorn calls this in each process).

    The parent put the database URL (and the simulator's URL) in the environment; migrations
    are done. No background worker here.
    """
    settings = resolve_settings(Settings())
    logs.configure(json=settings.json_logs, level=settings.log_level)
    assert settings.database_url, "the supervisor passes the database URL"
    services = build_services(settings, database_url=settings.database_url)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("API process %s serving", os.getpid())
        _freeze_startup_objects()
        try:
            yield
        finally:
            await services.close()
            metrics.forget_this_process()

    return create_app(services, lifespan=lifespan)


class BackgroundWorker:
    """The one background worker of a multi-process serve, on a thread of the supervisor."""

    def __init__(self, settings: Settings, database_url: str, razorpay_api_url: str | None):
        self.settings = settings
        self.database_url = database_url
        self.razorpay_api_url = razorpay_api_url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="joycart-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(timeout=30)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from joycart.worker import run_forever

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        services = build_services(
            self.settings, database_url=self.database_url, razorpay_api_url=self.razorpay_api_url
        )
        self._started.set()
        try:
            await run_forever(services, self._stop)
        finally:
            await services.close()

    def stop(self, timeout: float) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the background worker did not stop within %.0f s", timeout)


def serve_many(settings: Settings, host: str, port: int, processes: int, with_worker: bool) -> None:
    runtime = Runtime(settings)
    public = public_url(settings, host, port)
    background: BackgroundWorker | None = None
    try:
        url, api_url = asyncio.run(_prepare(runtime, public))
        # The API processes read their settings from the environment, like any other setting.
        os.environ["JOYCART_DATABASE_URL"] = url
        if api_url is not None:
            os.environ["JOYCART_RAZORPAY_API_URL"] = api_url
        config = server_config(
            APP_FACTORY, settings, factory=True, host=host, port=port, workers=processes
        )
        sockets = bind_sockets(host, port, processes)
        if with_worker:
            background = BackgroundWorker(settings, url, api_url)
            background.start()
        _ready(public, settings, processes)
        try:
            Supervisor(config, sockets).run()
        finally:
            for sock in sockets:
                sock.close()
    finally:
        if background is not None:
            background.stop(timeout=settings.drain_seconds + 15)
        runtime.stop()
