"""Settings from `JOYCART_*` environment variables (and `.env`), with safe development defaults.

Development generates its secrets once and keeps them in the data dir; production refuses to
start unless every secret is given explicitly and is strong enough.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_JWT_SECRET_BYTES = 32
MIN_METRICS_TOKEN_BYTES = 16
SIMULATED_KEY_ID = "rzp_test_simulated"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JOYCART_", env_file=".env", extra="ignore", populate_by_name=True
    )

    env: Literal["development", "production"] = "development"
    database_url: str | None = None
    data_dir: Path = Path(".joycart")
    jwt_secret: str | None = None
    razorpay_key_id: str | None = None
    razorpay_key_secret: str | None = None
    razorpay_webhook_secret: str | None = None
    razorpay_api_url: str = "https://api.razorpay.com"
    cloudinary_url: str | None = None
    cloudinary_api_url: str = "https://api.cloudinary.com"
    payment_window_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    rate_limits: Literal["on", "off"] = "on"
    cors_origins: str | None = None
    public_url: str | None = None
    # Comma-separated addresses or networks (CIDR) of the proxies in front of the API: only from
    # these is X-Forwarded-For (the client's address, for rate limits) or X-Request-Id believed;
    # "*" trusts every peer (only behind a proxy that strips those headers).
    trusted_proxies: str = "127.0.0.1"
    # "pgbouncer" when a transaction-mode pooler sits between us and PostgreSQL: no statement
    # cache, unique prepared-statement names (see db.py).
    database_pooler: Literal["pgbouncer"] | None = None
    # Bearer token for GET /metrics from anywhere but this host; unset: only 127.0.0.1 may scrape.
    metrics_token: str | None = None
    # "json" (one object a line, for log shippers) or "console" (for people); by default json in
    # production and console in development.
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # How long a stopping API process waits for requests in flight before it cuts them off.
    drain_seconds: float = Field(default=20.0, gt=0, le=300)
    return_window_days: int = Field(default=7, ge=1, le=365)
    # Not in the contract: knobs for operators and tests.
    gateway_timeout_seconds: float = Field(default=10.0, gt=0, le=10.0)
    refund_reconcile_age_minutes: int = Field(default=60, ge=1)
    db_pool_size: int = Field(default=5, ge=1, le=100)
    # GraphQL over HTTP (joycart/http/): persisted queries and cacheable public reads.
    # `apq`: Apollo's automatic persisted queries, any client may register a document;
    # `trusted`: only documents registered ahead of time run (recommended in production);
    # `off`: no persisted queries, every request carries its document.
    persisted_queries: Literal["apq", "trusted", "off"] = "apq"
    persisted_queries_dir: Path | None = None  # .graphql files / manifests loaded as trusted
    persisted_queries_max: int = Field(default=10_000, ge=0)  # client-registered documents
    persisted_queries_per_minute: int = Field(default=60, ge=0)  # registrations per address
    public_cache_seconds: int = Field(default=5, ge=0, le=86_400)  # max-age of public reads
    # Real-time updates (GraphQL subscriptions over WebSocket). LISTEN needs a session of its
    # own, which a transaction-mode pooler cannot give: point this at PostgreSQL directly.
    listen_database_url: str | None = None
    ws_max_subscriptions: int = Field(default=20, ge=1, le=1000)  # per socket
    ws_max_connections_per_user: int = Field(default=10, ge=1, le=1000)  # per process
    ws_keepalive_seconds: float = Field(default=15.0, gt=0, le=300)
    ws_queue_size: int = Field(default=64, ge=1, le=10_000)  # notices one subscription may lag
    ws_send_timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def trusted_proxy_list(self) -> list[str]:
        """`trusted_proxies` as a list, as uvicorn's proxy-headers layer takes it."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" if self.log_format else self.is_production

    @property
    def uses_simulated_gateway(self) -> bool:
        return self.razorpay_key_id in (None, SIMULATED_KEY_ID)


@dataclass(frozen=True)
class DevSecrets:
    jwt_secret: str
    razorpay_key_secret: str
    razorpay_webhook_secret: str


def load_dev_secrets(data_dir: Path) -> DevSecrets:
    """Read the development secrets from the data dir, generating them on first use."""
    path = data_dir / "dev-secrets.json"
    if path.exists():
        raw = json.loads(path.read_text())
        return DevSecrets(**raw)
    data_dir.mkdir(parents=True, exist_ok=True)
    created = DevSecrets(
        jwt_secret=secrets.token_urlsafe(48),
        razorpay_key_secret=secrets.token_urlsafe(24),
        razorpay_webhook_secret=secrets.token_urlsafe(24),
    )
    # Written owner-only from the first byte, then linked into place: two processes starting
    # together agree on one set of secrets, and nobody reads a half-written file.
    tmp = path.with_name(f".dev-secrets.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(created.__dict__))
    try:
        os.link(tmp, path)
    except FileExistsError:
        return DevSecrets(**json.loads(path.read_text()))
    finally:
        tmp.unlink()
    return created


def resolve_settings(settings: Settings) -> Settings:
    """Check production requirements and fill development secrets; returns a completed copy."""
    token = settings.metrics_token
    if token is not None and len(token.encode()) < MIN_METRICS_TOKEN_BYTES:
        raise ConfigError(f"JOYCART_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_BYTES} bytes")
    if settings.database_pooler == "pgbouncer" and not settings.listen_database_url:
        # LISTEN lives in a session, which a transaction-mode pooler hands out per transaction.
        raise ConfigError(
            "JOYCART_LISTEN_DATABASE_URL (PostgreSQL itself, not the pooler) is required when "
            "JOYCART_DATABASE_POOLER=pgbouncer: subscriptions LISTEN on a session of their own"
        )
    if settings.is_production:
        problems = []
        if not settings.database_url:
            problems.append("JOYCART_DATABASE_URL is required in production")
        if not settings.jwt_secret:
            problems.append("JOYCART_JWT_SECRET is required in production")
        elif len(settings.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            problems.append(f"JOYCART_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes")
        for name in ("razorpay_key_id", "razorpay_key_secret", "razorpay_webhook_secret"):
            if not getattr(settings, name):
                problems.append(f"JOYCART_{name.upper()} is required in production")
        if problems:
            raise ConfigError("; ".join(problems))
        return settings
    if settings.jwt_secret is not None and len(settings.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
        raise ConfigError(f"JOYCART_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes")
    dev = load_dev_secrets(settings.data_dir)
    updates: dict[str, object] = {}
    if settings.jwt_secret is None:
        updates["jwt_secret"] = dev.jwt_secret
    if settings.razorpay_key_id is None:
        updates["razorpay_key_id"] = SIMULATED_KEY_ID
        updates["razorpay_key_secret"] = dev.razorpay_key_secret
        updates["razorpay_webhook_secret"] = dev.razorpay_webhook_secret
    elif not (settings.razorpay_key_secret and settings.razorpay_webhook_secret):
        raise ConfigError(
            "JOYCART_RAZORPAY_KEY_SECRET and JOYCART_RAZORPAY_WEBHOOK_SECRET are required "
            "when JOYCART_RAZORPAY_KEY_ID is set"
        )
    return settings.model_copy(update=updates)
