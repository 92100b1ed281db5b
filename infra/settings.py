"""All configuration, from environment variables prefixed SHOP_. Defaults are the embedded
mode (SQLite files under SHOP_DATA_DIR, the bundled dev broker); docs/configuration.md lists
every variable. Read once, in a composition root; libraries take values as arguments."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.timeouts import CallTimeouts

DEV_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".shop")
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    log_json: bool = True

    # Members' tokens: the monolith signs them; extracted services must accept the same.
    jwt_secret: str = DEV_JWT_SECRET
    token_ttl_seconds: int = Field(3600, gt=0)

    # Graceful shutdown: keep answering not-ready for drain_delay, then stop accepting and
    # give in-flight work up to shutdown_grace to finish.
    shutdown_grace_seconds: float = Field(10.0, gt=0)
    drain_delay_seconds: float = Field(0.0, ge=0)

    # --- monolith (the legacy shop) ---
    monolith_port: int = 8001
    monolith_db_url: str | None = None
    monolith_server_limit: float = Field(5.0, gt=0)

    # --- gateway (the edge router) ---
    gateway_port: int = 8000
    gateway_connect_timeout: float = Field(1.0, gt=0)
    gateway_read_timeout: float = Field(6.0, gt=0)

    @model_validator(mode="after")
    def _refuse_dev_secret_in_production(self) -> Settings:
        if self.env == "production" and self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError("SHOP_JWT_SECRET must be set to a real secret in production")
        if len(self.jwt_secret) < 32:
            raise ValueError("SHOP_JWT_SECRET must be at least 32 characters")
        return self

    @cached_property
    def legacy_db_url(self) -> str:
        return self.monolith_db_url or f"sqlite:///{self.data_dir / 'legacy.db'}"

    @property
    def gateway_timeouts(self) -> CallTimeouts:
        return CallTimeouts(self.gateway_connect_timeout, self.gateway_read_timeout)

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"
