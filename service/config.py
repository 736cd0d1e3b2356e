"""Settings: one typed object read from ``CODEXEC_*`` environment variables.

Validated at start-up; :func:`Settings.check_environment` refuses unsafe production
configurations with a message that names the variable to fix.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from croniter import croniter
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Environment", "Settings"]

MiB = 1024 * 1024


class Environment(StrEnum):
    """Deployment environment (the Worker had the same three)."""

    development = "development"
    staging = "staging"
    production = "production"


class Settings(BaseSettings):
    """Every setting of the service; see the README table for meanings and defaults."""

    model_config = SettingsConfigDict(env_prefix="CODEXEC_", extra="ignore", frozen=True)

    environment: Environment = Environment.development
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)

    redis_url: str | None = None
    redis_cluster: bool = False
    embedded_redis_port: int = Field(6390, ge=1, le=65535)
    var_dir: Path = Path("var")
    plans_file: Path | None = None
    module_cache_dir: Path | None = None

    api_key: SecretStr | None = None
    admin_key: SecretStr | None = None
    receipt_signing_key: SecretStr | None = None
    legacy_plan: str = "basic"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    max_body_bytes: int = Field(2 * MiB, ge=1024)
    body_timeout_s: float = Field(10.0, gt=0)
    max_code_bytes: int = Field(64 * 1024, ge=1)
    max_context_bytes: int = Field(1 * MiB, ge=2)
    max_json_depth: int = Field(64, ge=2, le=512)
    max_output_lines: int = Field(1000, ge=1)
    max_output_bytes: int = Field(1 * MiB, ge=1)
    max_result_bytes: int = Field(1 * MiB, ge=16)

    sandbox_threads: int = Field(4, ge=1, le=256)
    admission_queue: int = Field(64, ge=0)
    client_share: float = Field(0.5, gt=0, le=1)
    hard_caps: bool = True
    budget_lease_ttl_s: float = Field(10.0, gt=0, le=3600)
    max_in_flight: int = Field(32, ge=1)
    tick_ms: int = Field(10, ge=1, le=1000)
    fuel_headroom: float = Field(2.0, ge=1.0)
    inline_fuel: int = Field(5_000_000, ge=0)
    gc_threshold: int = Field(5_000, ge=0)

    idempotency_ttl_s: int = Field(86400, ge=60)
    redis_budget_s: float = Field(1.0, gt=0)
    retention_days: int = Field(40, ge=1)
    maintenance_cron: str | None = "0 */6 * * *"
    spool_replay_interval_s: float = Field(5.0, gt=0)
    auth_cache_ttl_s: float = Field(30.0, ge=0)

    jobs_max_queued: int = Field(10_000, ge=1)
    jobs_max_queued_per_client: int = Field(100, ge=1)
    job_concurrency: int = Field(2, ge=1, le=256)
    job_reclaim_idle_s: float = Field(60.0, gt=0)
    batch_max_items: int = Field(100, ge=1, le=10_000)
    callback_allow_private: bool = False

    webhook_delivery: bool = True
    webhook_max_attempts: int = Field(8, ge=1, le=100)
    webhook_backoff_s: float = Field(2.0, gt=0)
    webhook_backoff_max_s: float = Field(3600.0, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0, le=120)
    webhook_claim_idle_s: float = Field(60.0, gt=0)
    webhook_concurrency: int = Field(16, ge=1, le=256)
    webhook_deadletter_retention_days: int = Field(30, ge=1)
    alert_rearm_margin: float = Field(5.0, ge=0, le=100)
    alert_refresh_s: float = Field(5.0, gt=0)
    export_source: str = Field("codexec", min_length=1)
    stripe_event_name: str = Field("codexec_execution", min_length=1, max_length=100)
    stripe_customers_file: Path | None = None
    stripe_value: Literal["fuel", "micro_usd"] = "micro_usd"

    log_level: str = "INFO"
    bench_endpoints: bool = False

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("maintenance_cron", mode="before")
    @classmethod
    def _cron_off(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in {"", "off", "none", "disabled"}:
            return None
        if isinstance(value, str) and not croniter.is_valid(value):
            raise ValueError(f"not a cron expression: {value!r}")
        return value

    @model_validator(mode="after")
    def _check_webhooks(self) -> Settings:
        if self.webhook_claim_idle_s <= self.webhook_timeout_s:
            raise ValueError(
                "CODEXEC_WEBHOOK_CLAIM_IDLE_S must exceed CODEXEC_WEBHOOK_TIMEOUT_S, or a "
                "delivery still being sent could be claimed and sent again"
            )
        return self

    @model_validator(mode="after")
    def _check_environment(self) -> Settings:
        if self.environment is Environment.production:
            if "*" in self.cors_origins:
                raise ValueError(
                    "CODEXEC_CORS_ORIGINS must list explicit origins in production, not '*'"
                )
            if self.admin_key is None:
                raise ValueError("CODEXEC_ADMIN_KEY is required in production")
            for name, secret in (("API_KEY", self.api_key), ("ADMIN_KEY", self.admin_key)):
                if secret is not None and len(secret.get_secret_value()) < 24:
                    raise ValueError(f"CODEXEC_{name} must be at least 24 characters in production")
        return self

    @property
    def spool_dir(self) -> Path:
        """Where usage records wait while Redis is unreachable."""
        return self.var_dir / "spool"

    @property
    def cache_dir(self) -> Path:
        """Where the compiled wasm module is cached."""
        return self.module_cache_dir or self.var_dir / "cache"
