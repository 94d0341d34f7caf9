"""One LISTEN connection per process: connect, listen, notice a loss, reconnect with backoff.

The connection is a direct asyncpg connection of its own, never one from the pool: LISTEN lives
in a session, and a transaction-mode pooler (PgBouncer) hands sessions out per transaction. So
`JOYCART_LISTEN_DATABASE_URL` may point at PostgreSQL itself while the pool goes through the
pooler. Notifications sent while the connection is down are lost; the hub is told when the
connection comes back (`on_ready(lost_at)`) and makes every subscriber read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from joycart.realtime.notices import CHANNEL, Notice, parse

log = logging.getLogger("joycart.realtime")

FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 5.0
# An idle connection whose server vanished (no FIN, no RST) is found by asking it something.
HEALTH_CHECK_SECONDS = 30.0
HEALTH_CHECK_TIMEOUT = 10.0
APPLICATION_NAME = "joycart-listen"


def asyncpg_dsn(url: str) -> str:
    """A libpq-style DSN for asyncpg from our SQLAlchemy URL (`postgresql+asyncpg://...`)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    def __init__(
        self,
        dsn: str,
        *,
        on_notice: Callable[[Notice], None],
        on_ready: Callable[[datetime | None], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.dsn = dsn
        self._on_notice = on_notice
        self._on_ready = on_ready
        self._on_lost = on_lost
        self.connects = 0  # how many times a connection was made: tests and logs

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after any loss."""
        delay = FIRST_RETRY_SECONDS
        lost_at: datetime | None = None
        while True:
            try:
                conn = await asyncpg.connect(
                    self.dsn,
                    timeout=10,
                    server_settings={"application_name": APPLICATION_NAME},
                )
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning("LISTEN connection failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            try:
                await self._listen(conn, lost_at)
                delay = FIRST_RETRY_SECONDS  # it worked for a while: the next retry is quick
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("LISTEN connection lost: %s", exc)
            finally:
                lost_at = datetime.now(UTC)
                self._on_lost()
                with contextlib.suppress(Exception):  # already broken: closing is best effort
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def _listen(self, conn: Any, lost_at: datetime | None) -> None:
        closed = asyncio.Event()
        conn.add_termination_listener(lambda _conn: closed.set())
        await conn.add_listener(CHANNEL, self._received)
        self.connects += 1
        log.info("listening on %s (connection %d)", CHANNEL, self.connects)
        self._on_ready(lost_at)
        while not closed.is_set():
            try:
                async with asyncio.timeout(HEALTH_CHECK_SECONDS):
                    await closed.wait()
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=HEALTH_CHECK_TIMEOUT)
        log.warning("LISTEN connection closed by the server")

    def _received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        notice = parse(payload)
        if notice is not None:
            self._on_notice(notice)
