"""Invariants of fulfilment, part of `tests.helpers.assert_invariants`: every unit of an item is
in one place, the counts on items equal the shipment and return rows, each received return has
its own refund, restocks are in the ledger, and statuses follow the counts."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from joycart.models import OrderItemStatus, OrderStatus
from joycart.resolvers.progress import ITEM_STATUS, ORDER_STATUS, Units, stage


async def assert_fulfilment_invariants(engine: AsyncEngine) -> None:
    """Every unit of an item is in one place; the counts on the item equal the shipment and
    return rows; each received return has its one refund; statuses follow the counts."""
    async with engine.connect() as conn:
        over = (
            await conn.execute(
                text(
                    """SELECT id FROM order_items
                       WHERE cancelled_quantity + shipped_quantity > quantity
                          OR delivered_quantity > shipped_quantity
                          OR returned_quantity + return_requested_quantity > delivered_quantity
                          OR LEAST(cancelled_quantity, shipped_quantity, delivered_quantity,
                                   returned_quantity, return_requested_quantity) < 0"""
                )
            )
        ).all()
        assert over == [], f"units over-committed (cancelled + shipped > quantity, ...): {over}"
        drift = (
            await conn.execute(
                text(
                    """SELECT i.id FROM order_items i
                       WHERE i.shipped_quantity <> COALESCE((SELECT SUM(l.quantity)
                               FROM shipment_lines l WHERE l.order_item_id = i.id), 0)
                          OR i.delivered_quantity <> COALESCE((SELECT SUM(l.quantity)
                               FROM shipment_lines l JOIN shipments s ON s.id = l.shipment_id
                               WHERE l.order_item_id = i.id AND s.status = 'DELIVERED'), 0)
                          OR i.return_requested_quantity <> COALESCE((SELECT SUM(r.quantity)
                               FROM returns r WHERE r.order_item_id = i.id
                                 AND r.status IN ('REQUESTED', 'APPROVED')), 0)
                          OR i.returned_quantity <> COALESCE((SELECT SUM(r.quantity)
                               FROM returns r WHERE r.order_item_id = i.id
                                 AND r.status = 'RECEIVED'), 0)"""
                )
            )
        ).all()
        assert drift == [], f"item unit counts differ from shipment and return rows: {drift}"
        strays = (
            await conn.execute(
                text(
                    """SELECT s.id FROM shipments s
                       JOIN shipment_lines l ON l.shipment_id = s.id
                       JOIN order_items i ON i.id = l.order_item_id
                       WHERE i.order_id <> s.order_id OR i.seller_id <> s.seller_id
                       UNION ALL
                       SELECT r.id FROM returns r JOIN order_items i ON i.id = r.order_item_id
                       WHERE i.order_id <> r.order_id OR i.seller_id <> r.seller_id"""
                )
            )
        ).all()
        assert strays == [], (
            f"shipments or returns holding another order's or seller's item: {strays}"
        )
        unrefunded = (
            await conn.execute(
                text(
                    """SELECT r.id FROM returns r LEFT JOIN refunds f ON f.id = r.refund_id
                       WHERE r.status = 'RECEIVED' AND (f.id IS NULL OR f.reason <> 'RETURN'
                             OR f.quantity <> r.quantity OR f.order_item_id <> r.order_item_id)"""
                )
            )
        ).all()
        assert unrefunded == [], f"received returns without their own refund: {unrefunded}"
        restock = (
            await conn.execute(
                text(
                    """SELECT i.product_id
                       FROM returns r JOIN order_items i ON i.id = r.order_item_id
                       WHERE r.restocked GROUP BY i.product_id
                       HAVING SUM(r.quantity) <> (SELECT COALESCE(SUM(l.delta), 0)
                         FROM stock_ledger l
                         WHERE l.product_id = i.product_id AND l.reason = 'RETURN')"""
                )
            )
        ).all()
        assert restock == [], f"restocked returns differ from RETURN ledger rows: {restock}"
        stray_restock = (
            await conn.execute(
                text(
                    """SELECT l.id FROM stock_ledger l WHERE l.reason = 'RETURN'
                       AND NOT EXISTS (SELECT 1 FROM returns r
                         JOIN order_items i ON i.id = r.order_item_id
                         WHERE r.restocked AND i.product_id = l.product_id)"""
                )
            )
        ).all()
        assert stray_restock == [], (
            f"RETURN ledger rows without a restocked return: {stray_restock}"
        )
        items = (
            await conn.execute(
                text(
                    """SELECT i.order_id, i.status, i.quantity, i.cancelled_quantity,
                              i.shipped_quantity, i.delivered_quantity,
                              i.return_requested_quantity, i.returned_quantity,
                              COALESCE(i.paid_quantity, i.quantity - i.cancelled_quantity),
                              o.status, o.paid_at IS NOT NULL
                       FROM order_items i JOIN orders o ON o.id = i.order_id"""
                )
            )
        ).all()
    orders: dict[object, list[Units]] = {}
    order_status: dict[object, str] = {}
    for row in items:
        units = Units(*row[2:8])
        assert ITEM_STATUS[stage(units)] is OrderItemStatus(row[1]), (
            f"item status {row[1]} does not follow its counts {units}"
        )
        if row[10]:  # paid: the order's status follows its paid-for units
            paid = row[8]
            orders.setdefault(row[0], []).append(
                Units(paid, paid - (units.quantity - units.cancelled), *row[4:8])
            )
            order_status[row[0]] = row[9]
    for order_id, parts in orders.items():
        total = Units(*(sum(getattr(u, f) for u in parts) for f in Units.__dataclass_fields__))
        assert ORDER_STATUS[stage(total)] is OrderStatus(order_status[order_id]), (
            f"order {order_id} is {order_status[order_id]}, its items say {stage(total)}"
        )
