"""All configuration, from environment variables prefixed SHOP_. Defaults are the embedded
mode (SQLite files under SHOP_DATA_DIR, the bundled dev broker); docs/configuration.md lists
every variable. Read once, in a composition root; libraries take values as arguments."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.kafka.runtime import KAFKA_VERSION
from libs.timeouts import CallTimeouts

DEV_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
DEV_ADMIN_TOKEN = "dev-only-admin-token"


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
    # Bearer token of every admin API (gateway routes and ramps, the member service's data
    # mode) and of the migration console.
    admin_token: str = DEV_ADMIN_TOKEN

    # Graceful shutdown: keep answering not-ready for drain_delay, then stop accepting and
    # give in-flight work up to shutdown_grace to finish.
    shutdown_grace_seconds: float = Field(10.0, gt=0)
    drain_delay_seconds: float = Field(0.0, ge=0)

    # --- events: the Kafka-protocol broker every process talks to ---
    # host:port[,host:port]. Unset: the embedded dev broker on SHOP_BROKER_PORT, which `shop up`
    # and `shop demo` start. Set it to an Apache Kafka (`shop kafka`'s, compose's) and nothing
    # else changes: the system runs on the real broker.
    kafka_bootstrap: str | None = None
    # Prepended to every topic name (events are published to and read from
    # `<prefix>shop.payments`): deployments, or test runs, that share one cluster stay apart.
    kafka_topic_prefix: str = ""
    broker_port: int = 9092
    # `shop kafka`: where Apache Kafka's jars are cached (outside the repo; default
    # ~/.cache/strangler-shop/kafka), the version Maven resolves, and its broker port.
    kafka_home: Path | None = None
    kafka_version: str = KAFKA_VERSION
    kafka_port: int = 9192

    # --- monolith (the legacy shop) ---
    monolith_port: int = 8001
    monolith_db_url: str | None = None
    monolith_server_limit: float = Field(5.0, gt=0)
    # The member service's gRPC address, for points once the member service owns them (stage
    # 3 on); default: this host at SHOP_MEMBER_GRPC_PORT. Each call's deadline in seconds.
    monolith_member_grpc: str | None = None
    monolith_member_timeout: float = Field(2.0, gt=0)
    # A points debit still pending after this long was left by a request that died (no
    # request lives longer than SHOP_MONOLITH_SERVER_LIMIT): it is given back to the member.
    # The recovery looks for such debits every interval seconds.
    monolith_points_stale_seconds: float = Field(30.0, gt=0)
    monolith_points_recovery_interval: float = Field(5.0, gt=0)

    # --- member service (the first extraction) ---
    member_port: int = 8011
    member_grpc_port: int = 50051
    member_db_url: str | None = None
    member_server_limit: float = Field(5.0, gt=0)
    # Where the service reads and writes members (docs/dualwrite.md): shared (the legacy DB,
    # with the batch sync copying it to the member DB), dual (both in one transaction) or
    # single (the member DB only). Changed live through the service's admin API.
    member_data_mode: Literal["shared", "dual", "single"] = "shared"
    member_sync_interval: float = Field(0.5, gt=0)
    # The gRPC server's own answer limit and the grace in-flight calls get at shutdown.
    member_grpc_grace_seconds: float = Field(5.0, gt=0)
    # Static membership of the payment events consumer group (Kafka's group.instance.id):
    # give each replica its own stable id and a restart within the session timeout
    # rebalances nothing. Unset: a dynamic member, which rebalances on every restart.
    member_group_instance_id: str | None = None

    # --- gateway (the edge router) ---
    gateway_port: int = 8000
    gateway_connect_timeout: float = Field(1.0, gt=0)
    gateway_read_timeout: float = Field(6.0, gt=0)
    # The gateway's own answer limit: above every route's read timeout, so a slow backend
    # gets a 504 envelope from the gateway rather than the caller giving up first.
    gateway_server_limit: float = Field(8.0, gt=0)
    # Backend name -> base URL, overriding the defaults built from each process's port.
    gateway_backends: dict[str, str] = Field(default_factory=dict)
    gateway_state_file: Path | None = None  # default: SHOP_DATA_DIR/gateway-state.json
    gateway_retries: int = Field(1, ge=0, le=3)  # idempotent requests, connection failures only
    gateway_max_connections: int = Field(256, gt=0)
    # Shadow (parallel run): the share mirrored when a route's shadow rule names none, and the
    # fields ignored on every comparison because they differ on every call.
    gateway_shadow_percent: float = Field(10.0, ge=0, le=100)
    gateway_shadow_ignore: list[str] = Field(default_factory=lambda: ["meta.request_id"])
    gateway_shadow_max_in_flight: int = Field(16, gt=0)
    # Metric-gated ramp defaults (`shop ramp` flags override them per ramp).
    gateway_ramp_steps: list[int] = Field(default_factory=lambda: [10, 30, 50, 100])
    gateway_ramp_interval_seconds: float = Field(60.0, gt=0)
    gateway_ramp_min_requests: int = Field(100, ge=1)
    gateway_ramp_max_error_delta: float = Field(0.01, ge=0, le=1)
    gateway_ramp_p99_ratio: float = Field(1.5, ge=1)
    gateway_ramp_p99_slack_ms: float = Field(25.0, ge=0)
    gateway_ramp_max_wait_intervals: int = Field(10, ge=1)
    # Routing inside the monolith (the talk's literal approach): a route table in the gateway's
    # format whose weights name "monolith" for the local share. Off when unset.
    monolith_forwarding: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _refuse_dev_secret_in_production(self) -> Settings:
        if self.env == "production" and self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError("SHOP_JWT_SECRET must be set to a real secret in production")
        if len(self.jwt_secret) < 32:
            raise ValueError("SHOP_JWT_SECRET must be at least 32 characters")
        return self

    @model_validator(mode="after")
    def _refuse_dev_admin_token_in_production(self) -> Settings:
        if self.env == "production" and self.admin_token == DEV_ADMIN_TOKEN:
            raise ValueError("SHOP_ADMIN_TOKEN must be set to a real token in production")
        if self.monolith_member_timeout >= self.monolith_server_limit:
            raise ValueError(
                "SHOP_MONOLITH_MEMBER_TIMEOUT must be below SHOP_MONOLITH_SERVER_LIMIT"
            )
        if self.monolith_points_stale_seconds <= self.monolith_server_limit:
            raise ValueError(
                "SHOP_MONOLITH_POINTS_STALE_SECONDS must be above SHOP_MONOLITH_SERVER_LIMIT: "
                "a debit is stale only once no request could still be using it"
            )
        if self.gateway_read_timeout >= self.gateway_server_limit:
            raise ValueError("SHOP_GATEWAY_READ_TIMEOUT must be below SHOP_GATEWAY_SERVER_LIMIT")
        return self

    @cached_property
    def legacy_db_url(self) -> str:
        return self.monolith_db_url or f"sqlite:///{self.data_dir / 'legacy.db'}"

    @property
    def kafka_bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.broker_port}"

    @property
    def embedded_broker(self) -> bool:
        """True when the processes use the dev broker that `shop up` starts itself."""
        return self.kafka_bootstrap is None

    @property
    def member_grpc_target(self) -> str:
        return self.monolith_member_grpc or f"{self.host}:{self.member_grpc_port}"

    @cached_property
    def member_db(self) -> str:
        return self.member_db_url or f"sqlite:///{self.data_dir / 'member.db'}"

    @property
    def gateway_timeouts(self) -> CallTimeouts:
        return CallTimeouts(self.gateway_connect_timeout, self.gateway_read_timeout)

    @property
    def gateway_state_path(self) -> Path:
        return self.gateway_state_file or self.data_dir / "gateway-state.json"

    @property
    def gateway_backend_urls(self) -> dict[str, str]:
        """Every process the gateway can route to, at its default port unless overridden."""
        defaults = {
            "monolith": self.url(self.monolith_port),
            "member-service": self.url(self.member_port),
            "order-service": self.url(8012),
            "payment-service": self.url(8013),
            "read-model": self.url(8020),
        }
        return {**defaults, **self.gateway_backends}

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"


def load_settings(**overrides: Any) -> Settings:
    """The settings every entry point loads (each process, each CLI command): from the
    environment, or a one-line error naming the bad variable instead of a traceback."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            (f"SHOP_{'_'.join(map(str, e['loc'])).upper()}: " if e["loc"] else "") + e["msg"]
            for e in exc.errors()
        )
        raise click.ClickException(f"invalid configuration: {problems}") from exc
