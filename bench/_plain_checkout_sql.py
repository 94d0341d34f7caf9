"""The statements `plain_checkout.py` sends, by hand, in JoyCart's order (see its docstring)."""

from __future__ import annotations

SQL = {
    "user": """SELECT users.id, users.email, users.name, users.role, users.password_hash,
        users.token_version, users.created_at, false AS revoked FROM users
        WHERE users.id = :id""",
    "buyer_lock": "SELECT users.id FROM users WHERE users.id = :id FOR NO KEY UPDATE",
    "cart": """SELECT products.id, products.seller_id, products.name, products.price,
        products.currency, cart_items.quantity FROM products
        JOIN cart_items ON cart_items.product_id = products.id
        WHERE cart_items.user_id = :buyer AND products.deleted_at IS NULL
        ORDER BY cart_items.added_at, products.id""",
    "existing": """SELECT orders.id, orders.buyer_id, orders.status, orders.total_amount,
        orders.currency, orders.idempotency_key, orders.request_fingerprint, orders.expires_at,
        orders.paid_at, orders.created_at, orders.updated_at FROM orders
        WHERE orders.buyer_id = :buyer AND orders.idempotency_key = :key""",
    "address": """SELECT addresses.id, addresses.user_id, addresses.name, addresses.phone,
        addresses.line1, addresses.line2, addresses.city, addresses.state, addresses.pin_code,
        addresses.is_default, addresses.created_at, addresses.updated_at FROM addresses
        WHERE addresses.user_id = :buyer AND addresses.is_default""",
    "order": """INSERT INTO orders (id, buyer_id, status, total_amount, currency,
        idempotency_key, request_fingerprint, expires_at, paid_at, created_at, updated_at)
        VALUES (:id, :buyer, 'PENDING_PAYMENT', :total, 'INR', :key, :fingerprint, :expires,
        NULL, :now, :now)""",
    "take": """UPDATE products SET stock=(products.stock - :qty), updated_at=:now
        WHERE products.id = :id AND products.deleted_at IS NULL AND products.stock >= :qty
        RETURNING products.id""",
    "ledger": """INSERT INTO stock_ledger (product_id, delta, reason, order_id, actor_id,
        created_at) VALUES (:product, :delta, 'CHECKOUT', :order, :buyer, :now)""",
    "item": """INSERT INTO order_items (id, order_id, product_id, seller_id, product_name,
        unit_price, currency, quantity, cancelled_quantity, paid_quantity, shipped_quantity,
        delivered_quantity, return_requested_quantity, returned_quantity, status, position,
        created_at) VALUES (:id, :order, :product, :seller, :name, :price, :currency, :quantity,
        0, NULL, 0, 0, 0, 0, 'ACTIVE', :position, :now)""",
    "payment": """INSERT INTO payments (id, order_id, sequence, receipt, amount, currency,
        status, razorpay_order_id, razorpay_payment_id, gateway_attempts, last_gateway_error,
        created_at, updated_at) VALUES (:id, :order, 1, :receipt, :amount, 'INR', 'CREATED',
        NULL, NULL, 0, NULL, :now, :now)""",
    "job": """INSERT INTO jobs (kind, payload, dedupe_key, status, run_at, attempts, created_at,
        updated_at) VALUES ('create_gateway_order', CAST(:payload AS JSONB), :key, 'PENDING',
        :run_at, 0, :now, :now) ON CONFLICT (dedupe_key) WHERE status = 'PENDING' DO NOTHING
        RETURNING jobs.id""",
    "cart_delete": "DELETE FROM cart_items WHERE cart_items.user_id = :buyer",
    "event": """INSERT INTO order_events (order_id, kind, subject, subject_id, order_item_id,
        from_status, to_status, actor, webhook_event_id, detail, created_at) VALUES (:order,
        :kind, :subject, :subject_id, NULL, NULL, NULL, :actor, NULL, CAST(:detail AS JSONB),
        :now) RETURNING order_events.id""",
    "lease_take": """INSERT INTO call_leases (key, token, expires_at)
        VALUES (:key, :token, (now() + interval '120 seconds')) ON CONFLICT (key) DO UPDATE
        SET token = :token, expires_at = (now() + interval '120 seconds')
        WHERE call_leases.expires_at < now() RETURNING call_leases.token""",
    "claim": """UPDATE payments SET gateway_attempts=(payments.gateway_attempts + 1),
        updated_at=:now WHERE payments.id = :id AND payments.razorpay_order_id IS NULL
        AND payments.status IN ('CREATED', 'FAILED') RETURNING *""",
    "lease_confirm": "SELECT call_leases.token FROM call_leases WHERE call_leases.key = :key "
    "FOR UPDATE",
    "order_lock": "SELECT orders.id FROM orders WHERE orders.id = :id FOR UPDATE",
    "payment_lock": "SELECT * FROM payments WHERE payments.id = :id FOR UPDATE",
    "settle": """UPDATE jobs SET status='DONE', locked_until=NULL, lease_token=NULL,
        updated_at=:now WHERE jobs.dedupe_key = :key AND jobs.status = 'PENDING'""",
    "current": """SELECT * FROM payments WHERE payments.order_id = :order
        ORDER BY payments.sequence DESC LIMIT 1""",
    "opened": """UPDATE payments SET razorpay_order_id=:rzp, last_gateway_error=NULL,
        updated_at=:now WHERE payments.id = :id""",
    "lease_drop": """DELETE FROM call_leases
        WHERE call_leases.key = :key AND call_leases.token = :token""",
}
