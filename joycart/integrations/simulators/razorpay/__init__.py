"""A fake Razorpay REST API on 127.0.0.1 plus a webhook sender that signs like Razorpay.

The real ``razorpay`` SDK talks to it unchanged::

    sim = RazorpaySimulator(webhook_url="http://127.0.0.1:8000/webhooks/razorpay")
    client = razorpay.Client(auth=(sim.key_id, sim.key_secret), base_url=sim.start())
    order = client.order.create({"amount": 50000, "currency": "INR", "receipt": "o_1"}, timeout=5)
    for delivery in sim.pay(order["id"]):  # payment.authorized, payment.captured, order.paid
        sim.deliver(delivery)

Tests drive the simulated checkout through Python methods (``pay``, ``fail_payment``,
``process_refund``, ``fail_refund``) and inject faults (``inject``) to reproduce ambiguous gateway
failures: 5xx, HTML from a proxy, timeouts after the effect and dropped connections. The
development server uses the unauthenticated ``/_sim/...`` control routes instead. State lives in
memory behind one lock because the app is served on its own thread while tests read it.

The package, by concern: `wire` (formats, canned errors, faults), `state` (what it keeps and how
tests read it), `customers` (payments, refunds settling, webhooks sent), `rest` (the `/v1` API and
the `/_sim` controls), `simulator` (serving). `razorpay_process` runs it as a process of its own.
"""

from joycart.integrations.simulators.razorpay.simulator import RazorpaySimulator
from joycart.integrations.simulators.razorpay.wire import (
    RecordedRequest,
    WebhookDelivery,
    sign_webhook,
)

__all__ = ["RazorpaySimulator", "RecordedRequest", "WebhookDelivery", "sign_webhook"]
