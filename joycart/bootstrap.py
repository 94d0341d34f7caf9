"""The one place that chooses real or simulated integrations from the settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from joycart.config import Settings
from joycart.db import Sessions, make_engine, make_sessions
from joycart.integrations.images import ImageStore, LocalImageStore
from joycart.integrations.razorpay import PaymentGateway, RazorpayGateway
from joycart.realtime.hub import Hub
from joycart.realtime.limits import SocketLimits

log = logging.getLogger("joycart")


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: Sessions
    gateway: PaymentGateway
    images: ImageStore
    webhook_secret: str
    realtime: Hub
    # What time it is for timed business rules (the return window); tests set their own.
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def close(self) -> None:
        await self.realtime.close()
        await self.engine.dispose()


def build_gateway(settings: Settings, *, api_url: str | None = None) -> PaymentGateway:
    assert settings.razorpay_key_id
    assert settings.razorpay_key_secret
    return RazorpayGateway(
        key_id=settings.razorpay_key_id,
        key_secret=settings.razorpay_key_secret,
        base_url=api_url or settings.razorpay_api_url,
        timeout=settings.gateway_timeout_seconds,
    )


def build_images(settings: Settings) -> ImageStore:
    if settings.cloudinary_url:
        from joycart.integrations.cloudinary import CloudinaryImageStore

        return CloudinaryImageStore(
            settings.cloudinary_url,
            api_url=settings.cloudinary_api_url,
            timeout=settings.gateway_timeout_seconds,
        )
    return LocalImageStore(Path(settings.data_dir) / "images", url_prefix="/images/")


def build_services(
    settings: Settings, *, database_url: str, razorpay_api_url: str | None = None
) -> Services:
    engine = make_engine(
        database_url, pool_size=settings.db_pool_size, pooler=settings.database_pooler
    )
    sessions = make_sessions(engine)
    assert settings.razorpay_webhook_secret
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        gateway=build_gateway(settings, api_url=razorpay_api_url),
        images=build_images(settings),
        webhook_secret=settings.razorpay_webhook_secret,
        # One LISTEN connection per process, opened by the first subscription.
        realtime=Hub(
            listen_url=settings.listen_database_url or database_url,
            sessions=sessions,
            # A subscriber's update is a few reads of committed rows, like a query's sibling
            # fields: without BEGIN and ROLLBACK around each, half the round trips.
            read_sessions=make_sessions(engine.execution_options(isolation_level="AUTOCOMMIT")),
            limits=SocketLimits.of(settings),
        ),
    )
