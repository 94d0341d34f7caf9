"""The pool hands out only live connections, without a ping round trip per checkout."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, text

from joycart.db import make_engine


async def test_a_connection_the_server_ended_is_replaced_at_checkout(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    admin = make_engine(database_url, pool_size=1, max_overflow=0)
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    try:
        async with engine.connect() as conn:
            old_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
        async with admin.connect() as conn:
            await conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": old_pid})
        # Wait for the client side to have read the server's goodbye (a condition, bounded).
        for _ in range(500):
            if driver.is_closed():
                break
            await asyncio.sleep(0.01)
        assert driver.is_closed()
        sent.clear()
        async with engine.connect() as conn:
            new_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert new_pid != old_pid
        assert sent == ["SELECT pg_backend_pid()"]  # no ping statement before it
    finally:
        await engine.dispose()
        await admin.dispose()
