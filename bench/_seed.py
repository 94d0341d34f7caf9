"""Seeding for the benchmarks: accounts (with signed access tokens) and products (with their
opening stock in the ledger), straight into the database over asyncpg."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from _harness import Server


def asyncpg_dsn(server: Server) -> dict[str, str]:
    """Keyword arguments for `asyncpg.connect` to the server's embedded database."""
    return {"user": "postgres", "host": server.socket_dir, "database": "joycart"}


# ---------------------------------------------------------------------------------------------
# Seeding straight into the server's database (not measured): accounts, products, carts.

# Seeded accounts never log in: their tokens are issued here with the server's JWT secret.
_NO_LOGIN_HASH = "seeded-by-bench-no-login"


@dataclass(frozen=True)
class Seeded:
    id: uuid.UUID
    token: str


async def seed_users(
    conn: asyncpg.Connection, n: int, *, role: str, jwt_secret: str, prefix: str
) -> list[Seeded]:
    from joycart.security import issue_access_token

    ids = [uuid.uuid4() for _ in range(n)]
    await conn.executemany(
        "INSERT INTO users (id, email, name, role, password_hash, created_at) "
        "VALUES ($1, $2, $3, $4, $5, now())",
        [
            (uid, f"{prefix}-{uid.hex[:12]}@example.com", f"{prefix} {i}", role, _NO_LOGIN_HASH)
            for i, uid in enumerate(ids)
        ],
    )
    return [Seeded(uid, issue_access_token(jwt_secret, uid)) for uid in ids]


async def seed_products(
    conn: asyncpg.Connection,
    seller_ids: Sequence[uuid.UUID],
    per_seller: int,
    *,
    stock: int,
    price: int = 49_900,
) -> list[uuid.UUID]:
    """Live products with their opening stock in the ledger; created one second apart."""
    rows = []
    for s, seller in enumerate(seller_ids):
        for i in range(per_seller):
            n = s * per_seller + i
            rows.append(
                (
                    uuid.uuid4(),
                    seller,
                    f"Product {n:04d}",
                    f"Hand-made item number {n}, packed with care and shipped across India.",
                    price + 100 * (n % 50),
                    stock,
                    n,
                )
            )
    await conn.executemany(
        "INSERT INTO products (id, seller_id, name, description, price, currency, stock, "
        "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'INR', $6, "
        "now() - make_interval(secs => $7), now())",
        rows,
    )
    await conn.executemany(
        "INSERT INTO stock_ledger (product_id, delta, reason, actor_id, created_at) "
        "VALUES ($1, $2, 'INITIAL', $3, now())",
        [(r[0], stock, r[1]) for r in rows if stock],
    )
    return [r[0] for r in rows]
