"""The simulated Razorpay as a process of its own (development and benchmarks only).

    python -m joycart.integrations.simulators.razorpay_process --key-id rzp_test_bench \\
        --key-secret S --webhook-secret W --webhook-url http://127.0.0.1:8000/webhooks/razorpay

Prints the URL it serves on (first line of standard output) once it accepts connections, and
serves until SIGTERM or Ctrl-C. Point `joycart serve` at it with JOYCART_RAZORPAY_KEY_ID,
JOYCART_RAZORPAY_KEY_SECRET, JOYCART_RAZORPAY_WEBHOOK_SECRET and JOYCART_RAZORPAY_API_URL: the
server then starts no simulator of its own, and its CPU time is JoyCart's alone, as it would be
in production (`bench/` runs every benchmark this way).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from joycart.integrations.simulators.razorpay import RazorpaySimulator


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--key-secret", required=True)
    parser.add_argument("--webhook-secret", required=True)
    parser.add_argument("--webhook-url", help="where webhooks go (JoyCart's /webhooks/razorpay)")
    parser.add_argument(
        "--refunds-after",
        type=float,
        default=3.0,
        help="seconds after which a refund is processed and its webhook sent (negative: never)",
    )
    args = parser.parse_args(argv)
    simulator = RazorpaySimulator(
        key_id=args.key_id,
        key_secret=args.key_secret,
        webhook_secret=args.webhook_secret,
        webhook_url=args.webhook_url,
        auto_process_refunds_after=args.refunds_after if args.refunds_after >= 0 else None,
    )
    server, sock = simulator.make_server(args.host, args.port, embedded=False)
    sock.listen(1024)  # connections made from now on wait until uvicorn accepts them
    print(simulator.base_url, flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
