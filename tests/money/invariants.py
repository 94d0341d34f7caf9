"""The money invariants of issue 8, checked in SQL and against the fake Razorpay's own books.

`money_violations(session, razorpay)` returns one line per broken invariant (empty when all
hold), so a schedule can print every violation with its steps; each line starts with its letter:

 a. stock equals its ledger for every product (and is never negative);
 b. one order per (buyer, idempotency key);
 c. an order is PAID only by an owed capture matching its session's amount and currency, and
    that capture is a captured payment of that amount at Razorpay;
 d. refunds at Razorpay for a payment never exceed it;
 e. every unit cancelled after payment has exactly one refund at its price: our refunds that are
    not FAILED (or FAILED because the bank failed them: then a person redoes them) add up to the
    cancelled units times the unit price; each has at most one live refund at Razorpay, of its
    amount (REFUNDED: processed there); a FAILED one has none and must have been failed there
    (our code never gives up on a unit by itself); Razorpay holds no live refund we do not know;
 f. nothing INITIATED is left without a live job (`quiescent=True`: nothing INITIATED at all).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from joycart.integrations.simulators.razorpay import RazorpaySimulator


async def _rows(session: AsyncSession, sql: str) -> list[Any]:
    return list((await session.execute(text(sql))).all())


async def _stock_and_orders(session: AsyncSession) -> list[str]:
    found = [
        f"a. product {r.id}: stock {r.stock} but ledger {r.ledger}"
        for r in await _rows(
            session,
            """SELECT p.id, p.stock, COALESCE(SUM(l.delta), 0) AS ledger
               FROM products p LEFT JOIN stock_ledger l ON l.product_id = p.id
               GROUP BY p.id HAVING p.stock <> COALESCE(SUM(l.delta), 0) OR p.stock < 0""",
        )
    ]
    found += [
        f"b. buyer {r.buyer_id} has {r.n} orders for key {r.idempotency_key!r}"
        for r in await _rows(
            session,
            """SELECT buyer_id, idempotency_key, count(*) AS n FROM orders
               GROUP BY 1, 2 HAVING count(*) > 1""",
        )
    ]
    return found


async def _paid_orders(session: AsyncSession, payments: dict[str, dict[str, Any]]) -> list[str]:
    found = [
        f"c. order {r.id} is paid ({r.status}) without an owed capture matching its session"
        for r in await _rows(
            session,
            """SELECT o.id, o.status FROM orders o
               WHERE (o.paid_at IS NOT NULL OR o.status::text = 'PAID') AND NOT EXISTS (
                 SELECT 1 FROM payments p JOIN captures c ON c.payment_id = p.id
                 WHERE p.order_id = o.id AND c.owed AND c.amount = p.amount
                   AND c.currency = p.currency AND p.status::text = 'CAPTURED')""",
        )
    ]
    for r in await _rows(
        session,
        """SELECT c.gateway_payment_id, c.amount, c.currency FROM captures c WHERE c.owed""",
    ):
        at = payments.get(r.gateway_payment_id)
        if (
            at is None
            or not at["captured"]
            or (at["amount"], at["currency"])
            != (
                r.amount,
                r.currency,
            )
        ):
            found.append(f"c. owed capture {r.gateway_payment_id} is not so at Razorpay: {at}")
    return found


def _over_refunded(razorpay: RazorpaySimulator) -> list[str]:
    refunded: dict[str, int] = defaultdict(int)
    for refund in razorpay.refunds.values():
        if refund["status"] != "failed":
            refunded[refund["payment_id"]] += refund["amount"]
    payments = razorpay.payments
    return [
        f"d. payment {pid} of {payments[pid]['amount']} has {total} refunded at Razorpay"
        for pid, total in refunded.items()
        if pid not in payments or total > payments[pid]["amount"]
    ]


async def _refunds_match(session: AsyncSession, razorpay: RazorpaySimulator) -> list[str]:
    found: list[str] = []
    live: dict[str, list[dict[str, Any]]] = defaultdict(list)
    failed_there: set[str] = set()
    ours = {
        str(r.id): r
        for r in await _rows(
            session, "SELECT id, order_item_id, amount, status::text AS status FROM refunds"
        )
    }
    for refund in razorpay.refunds.values():
        notes = refund.get("notes")
        key = str(notes.get("joycart_refund_id")) if isinstance(notes, dict) else ""
        if refund["status"] == "failed":
            failed_there.add(key)
        elif key not in ours:
            found.append(f"e. Razorpay refund {refund['id']} ({refund['amount']}) is not ours")
        else:
            live[key].append(refund)
    # A refund FAILED by the bank (refund.failed) is settled, visible, and a person's to redo;
    # a refund FAILED with no failed refund at Razorpay means our code gave up on a unit.
    covered: dict[str, int] = defaultdict(int)
    for refund_id, row in ours.items():
        there = live.get(refund_id, [])
        if row.status != "FAILED" or refund_id in failed_there:
            covered[str(row.order_item_id)] += row.amount
        if row.status == "FAILED" and refund_id not in failed_there:
            found.append(f"e. refund {refund_id} is FAILED but Razorpay never failed it")
        if row.status == "FAILED" and there:
            found.append(f"e. FAILED refund {refund_id} has {len(there)} live refunds at Razorpay")
        elif len(there) > 1:
            found.append(f"e. refund {refund_id} was made {len(there)} times at Razorpay")
        elif row.status == "REFUNDED" and [r["status"] for r in there] != ["processed"]:
            found.append(f"e. REFUNDED refund {refund_id} is not processed at Razorpay: {there}")
        elif there and there[0]["amount"] != row.amount:
            found.append(f"e. refund {refund_id} of {row.amount} is {there[0]['amount']} there")
    for r in await _rows(
        session,
        """SELECT id, unit_price,
                  paid_quantity - (quantity - cancelled_quantity) + returned_quantity AS units
           FROM order_items WHERE paid_quantity IS NOT NULL""",
    ):
        if r.units * r.unit_price != covered[str(r.id)]:
            found.append(
                f"e. item {r.id}: {r.units} units cancelled after payment at {r.unit_price}, "
                f"refunds (not FAILED, or failed by the bank) total {covered[str(r.id)]}"
            )
    return found


async def _initiated(session: AsyncSession, *, quiescent: bool) -> list[str]:
    if quiescent:
        return [
            f"f. refund {r.id} still INITIATED after quiescence (gateway id {r.gateway_refund_id})"
            for r in await _rows(
                session,
                "SELECT id, gateway_refund_id FROM refunds WHERE status::text = 'INITIATED'",
            )
        ]
    return [
        f"f. refund {r.id} is INITIATED, unsubmitted, and no job will submit it"
        for r in await _rows(
            session,
            """SELECT r.id FROM refunds r WHERE r.status::text = 'INITIATED'
                 AND r.gateway_refund_id IS NULL AND NOT EXISTS (
                   SELECT 1 FROM jobs j WHERE j.status::text = 'PENDING'
                     AND j.payload->>'refund_id' = r.id::text)""",
        )
    ]


async def money_violations(
    session: AsyncSession, razorpay: RazorpaySimulator, *, quiescent: bool = True
) -> list[str]:
    """Every broken money invariant, one line each; `quiescent` once the fake is healthy and
    every owed call and webhook has been worked off."""
    found = await _stock_and_orders(session)
    found += await _paid_orders(session, razorpay.payments)
    found += _over_refunded(razorpay)
    found += await _refunds_match(session, razorpay)
    found += await _initiated(session, quiescent=quiescent)
    return found
