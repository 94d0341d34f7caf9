"""What a command needs before the app: the database (embedded if none is configured) and, in
development, the simulated Razorpay. Started once per command, in that order; stopped in reverse.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from joycart.config import Settings
from joycart.embedded_db import EmbeddedPostgres
from joycart.observability import logs

if TYPE_CHECKING:
    from joycart.integrations.simulators.razorpay import RazorpaySimulator

log = logging.getLogger("joycart")


class Runtime:
    """Database (embedded if none is configured) and the simulated gateway, started in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedPostgres | None = None
        self.simulator: RazorpaySimulator | None = None

    async def database_url(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        self.embedded = EmbeddedPostgres(self.settings.data_dir)
        await asyncio.to_thread(self.embedded.start)
        await self.embedded.ensure_database()
        return self.embedded.url()

    def start_simulator(self, webhook_url: str) -> str | None:
        if not self.settings.uses_simulated_gateway:
            return None
        from joycart.integrations.simulators.razorpay import RazorpaySimulator

        assert self.settings.razorpay_key_secret
        assert self.settings.razorpay_webhook_secret
        sim = RazorpaySimulator(
            key_id=self.settings.razorpay_key_id or "",
            key_secret=self.settings.razorpay_key_secret,
            webhook_secret=self.settings.razorpay_webhook_secret,
            webhook_url=webhook_url,
            auto_process_refunds_after=3.0,
        )
        url = sim.start()
        logs.adopt_uvicorn_loggers()  # the simulator's uvicorn installed its own log handlers
        self.simulator = sim
        Path(self.settings.data_dir, "simulator.json").write_text(json.dumps({"url": url}))
        log.info("simulated Razorpay at %s (refunds settle 3 s after they are asked)", url)
        return url

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def simulator_url(settings: Settings) -> str | None:
    """The simulated Razorpay a running `serve` started, for commands run beside it."""
    path = Path(settings.data_dir, "simulator.json")
    if settings.uses_simulated_gateway and path.exists():
        return str(json.loads(path.read_text())["url"])
    return None
