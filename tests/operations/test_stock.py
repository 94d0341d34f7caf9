"""Stock under concurrency: adjustments race through one guarded statement each, never below
zero, and the ledger always sums to the stock."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from joycart.bootstrap import Services
from tests.helpers import Api, assert_invariants

ADJUST = """mutation($p: ID!, $d: Int!) { adjustStock(productId: $p, delta: $d) {
    product { stock } errors { code field } } }"""


async def test_twenty_concurrent_decrements_of_ten_units_leave_exactly_zero(
    api: Api, services: Services
) -> None:
    seller = await api.register("SELLER")
    product_id = await api.create_product(seller, stock=10)

    answers = await asyncio.gather(
        *(api.gql(ADJUST, {"p": product_id, "d": -1}, seller.token) for _ in range(20))
    )

    payloads = [a["adjustStock"] for a in answers]
    succeeded = [p for p in payloads if p["errors"] == []]
    refused = [p for p in payloads if p["errors"]]
    assert len(succeeded) == 10
    assert len(refused) == 10
    assert all(p["errors"] == [{"code": "INVALID_INPUT", "field": "delta"}] for p in refused)
    # Each success saw its own decrement: the stocks it reports are 9, 8, ..., 0 once each.
    assert sorted(p["product"]["stock"] for p in succeeded) == list(range(10))
    async with services.engine.connect() as conn:
        stock = await conn.scalar(
            text("SELECT stock FROM products WHERE id = :p"), {"p": product_id}
        )
        movements = await conn.scalar(
            text(
                "SELECT count(*) FROM stock_ledger WHERE product_id = :p AND reason = 'ADJUSTMENT'"
            ),
            {"p": product_id},
        )
    assert (stock, movements) == (0, 10)
    await assert_invariants(services.engine)
