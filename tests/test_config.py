"""Configuration: production refuses weak or missing settings and names them; development
generates its secrets once and keeps them."""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from joycart.config import ConfigError, Settings, load_dev_secrets, resolve_settings

STRONG_SECRET = "s" * 48
PRODUCTION = {
    "JOYCART_ENV": "production",
    "JOYCART_DATABASE_URL": "postgresql+asyncpg://joycart@db.internal/joycart",
    "JOYCART_JWT_SECRET": STRONG_SECRET,
    "JOYCART_RAZORPAY_KEY_ID": "rzp_live_abc",
    "JOYCART_RAZORPAY_KEY_SECRET": "live-key-secret",
    "JOYCART_RAZORPAY_WEBHOOK_SECRET": "live-webhook-secret",
}
RAZORPAY = (
    "JOYCART_RAZORPAY_KEY_ID",
    "JOYCART_RAZORPAY_KEY_SECRET",
    "JOYCART_RAZORPAY_WEBHOOK_SECRET",
)


def _clear(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("JOYCART_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets: no JOYCART_* from the shell, no .env from the working directory."""
    _clear(monkeypatch)
    monkeypatch.chdir(tmp_path)


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Settings read from exactly these environment variables."""
    _clear(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def _production_without(monkeypatch: pytest.MonkeyPatch, *missing: str) -> str:
    env = {k: v for k, v in PRODUCTION.items() if k not in missing}
    with pytest.raises(ConfigError) as refused:
        resolve_settings(_settings(monkeypatch, env))
    return str(refused.value)


def test_complete_production_settings_start(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = resolve_settings(_settings(monkeypatch, PRODUCTION))
    assert settings.is_production
    assert settings.jwt_secret == STRONG_SECRET
    assert not settings.uses_simulated_gateway


def test_production_refuses_to_start_without_a_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert "JOYCART_DATABASE_URL" in _production_without(monkeypatch, "JOYCART_DATABASE_URL")


def test_production_refuses_to_start_without_a_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _production_without(monkeypatch, "JOYCART_JWT_SECRET")
    assert "JOYCART_JWT_SECRET" in message
    assert "JOYCART_DATABASE_URL" not in message


def test_production_refuses_a_sixteen_byte_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**PRODUCTION, "JOYCART_JWT_SECRET": "0123456789abcdef"}
    with pytest.raises(ConfigError) as refused:
        resolve_settings(_settings(monkeypatch, env))
    message = str(refused.value)
    assert "JOYCART_JWT_SECRET" in message
    assert "32 bytes" in message


def test_production_refuses_to_start_without_razorpay_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = _production_without(monkeypatch, *RAZORPAY)
    for name in RAZORPAY:
        assert name in message
    for name in RAZORPAY:
        assert name in _production_without(monkeypatch, name)


def test_production_names_every_problem_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _production_without(monkeypatch, "JOYCART_DATABASE_URL", "JOYCART_JWT_SECRET")
    assert "JOYCART_DATABASE_URL" in message
    assert "JOYCART_JWT_SECRET" in message


def test_development_generates_secrets_once_and_reuses_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"JOYCART_DATA_DIR": str(tmp_path / "data")}
    first = resolve_settings(_settings(monkeypatch, env))
    assert first.jwt_secret is not None
    assert len(first.jwt_secret.encode()) >= 32
    assert first.uses_simulated_gateway
    stored = tmp_path / "data" / "dev-secrets.json"
    assert json.loads(stored.read_text())["jwt_secret"] == first.jwt_secret
    assert stored.stat().st_mode & 0o077 == 0  # readable by its owner only

    again = resolve_settings(_settings(monkeypatch, env))
    assert again.jwt_secret == first.jwt_secret
    assert again.razorpay_webhook_secret == first.razorpay_webhook_secret

    elsewhere = resolve_settings(_settings(monkeypatch, {"JOYCART_DATA_DIR": str(tmp_path / "b")}))
    assert elsewhere.jwt_secret != first.jwt_secret


def test_processes_starting_together_agree_on_one_set_of_secrets(tmp_path: Path) -> None:
    start = threading.Barrier(8)

    def load(_: int) -> str:
        start.wait()
        return load_dev_secrets(tmp_path).jwt_secret

    with ThreadPoolExecutor(8) as pool:
        seen = set(pool.map(load, range(8)))
    assert seen == {load_dev_secrets(tmp_path).jwt_secret}
    assert [p.name for p in tmp_path.iterdir()] == ["dev-secrets.json"]


def test_development_keeps_a_given_jwt_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"JOYCART_DATA_DIR": str(tmp_path), "JOYCART_JWT_SECRET": STRONG_SECRET}
    assert resolve_settings(_settings(monkeypatch, env)).jwt_secret == STRONG_SECRET


def test_development_refuses_a_short_jwt_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"JOYCART_DATA_DIR": str(tmp_path), "JOYCART_JWT_SECRET": "x" * 31}
    with pytest.raises(ConfigError, match="JOYCART_JWT_SECRET"):
        resolve_settings(_settings(monkeypatch, env))


def test_env_file_in_the_working_directory_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("JOYCART_ENV=production\nJOYCART_PAYMENT_WINDOW_MINUTES=45\n")
    settings = Settings()
    assert settings.is_production
    assert settings.payment_window_minutes == 45


def test_a_short_metrics_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**PRODUCTION, "JOYCART_METRICS_TOKEN": "short"}
    with pytest.raises(ConfigError, match="JOYCART_METRICS_TOKEN"):
        resolve_settings(_settings(monkeypatch, env))
    env["JOYCART_METRICS_TOKEN"] = "t" * 32
    assert resolve_settings(_settings(monkeypatch, env)).metrics_token == "t" * 32


def test_operations_settings_have_safe_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, {})
    assert settings.database_pooler is None
    assert settings.trusted_proxies == "127.0.0.1"
    assert settings.metrics_token is None
    assert settings.json_logs is False
    assert _settings(monkeypatch, PRODUCTION).json_logs is True
    assert _settings(monkeypatch, {"JOYCART_LOG_FORMAT": "json"}).json_logs is True
    pooled = _settings(monkeypatch, {"JOYCART_DATABASE_POOLER": "pgbouncer"})
    assert pooled.database_pooler == "pgbouncer"


def test_a_pooled_database_needs_a_direct_listen_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOYCART_DATABASE_POOLER", "pgbouncer")
    with pytest.raises(ConfigError, match="JOYCART_LISTEN_DATABASE_URL"):
        resolve_settings(Settings())
    monkeypatch.setenv("JOYCART_LISTEN_DATABASE_URL", "postgresql+asyncpg://db:5432/joycart")
    assert resolve_settings(Settings()).listen_database_url is not None
