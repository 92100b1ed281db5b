"""Configuration, from environment variables prefixed SHOP_. Defaults are the embedded mode
(SQLite files under SHOP_DATA_DIR, the bundled dev broker); docs/configuration.md lists every
variable. Read once, in a composition root; libraries take values as arguments.

One shared base holds what every process reads (environment, data dir, secrets and their
production guard, shutdown, the broker, the legacy DB); each process adds its own on top:
`MonolithSettings`, `GatewaySettings`, and for every extracted service a `ServiceSettings`
class made from its declaration (`SHOP_<PREFIX>_PORT`, `_DB_URL`, ...: infra/extractions.py).
Where the other processes answer is the process registry's business (infra/processes.py)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, overload

import click
from pydantic import AliasGenerator, Field, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from infra.kafka.runtime import KAFKA_VERSION
from libs.timeouts import CallTimeouts

DEV_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
MIN_ADMIN_TOKEN_LENGTH = 16  # in production; any token will do in development
DEV_ADMIN_TOKEN = "dev-only-admin-token"


def _variable(field: str) -> str:
    return f"SHOP_{field.upper()}"


class SharedSettings(BaseSettings):
    """What every process reads. Each field is the variable SHOP_<FIELD>; a service's own
    fields carry their service's prefix instead (`ServiceSettings.declare`)."""

    model_config = SettingsConfigDict(
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        alias_generator=AliasGenerator(validation_alias=_variable),
    )

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".shop")
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    log_json: bool = True

    # Members' tokens: the monolith signs them; extracted services must accept the same.
    jwt_secret: str = DEV_JWT_SECRET
    token_ttl_seconds: int = Field(3600, gt=0)
    # Bearer token of every admin API (gateway routes and ramps, each service's data mode)
    # and of the migration console.
    admin_token: str = DEV_ADMIN_TOKEN

    # Graceful shutdown: keep answering not-ready for drain_delay, then stop accepting and
    # give in-flight work up to shutdown_grace to finish.
    shutdown_grace_seconds: float = Field(10.0, gt=0)
    drain_delay_seconds: float = Field(0.0, ge=0)
    # Comma-separated addresses whose X-Forwarded-For / X-Forwarded-Proto a process believes
    # (a load balancer in front of it). None by default: any local caller could otherwise name
    # the client an admin change is logged for.
    trusted_proxies: str = ""

    # The legacy DB: the monolith's, and the one every extraction reads and writes until its
    # single-write stage.
    monolith_db_url: str | None = None

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

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> Any:
        if self.env == "production" and self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError("SHOP_JWT_SECRET must be set to a real secret in production")
        if len(self.jwt_secret) < 32:
            raise ValueError("SHOP_JWT_SECRET must be at least 32 characters")
        if self.env == "production" and self.admin_token == DEV_ADMIN_TOKEN:
            raise ValueError("SHOP_ADMIN_TOKEN must be set to a real token in production")
        if self.env == "production" and len(self.admin_token) < MIN_ADMIN_TOKEN_LENGTH:
            # An empty token compares equal to an empty bearer; a short one is guessed.
            raise ValueError(
                f"SHOP_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_LENGTH} characters in "
                "production"
            )
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

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"


class MonolithSettings(SharedSettings):
    monolith_port: int = 8001
    monolith_server_limit: float = Field(5.0, gt=0)
    # The member service's gRPC address, for points once the member service owns them (stage
    # 3 on); default: where the process registry has it. Each call's deadline in seconds.
    monolith_member_grpc: str | None = None
    monolith_member_timeout: float = Field(2.0, gt=0)
    # A points debit still pending after this long was left by a request that died (no
    # request lives longer than SHOP_MONOLITH_SERVER_LIMIT): it is given back to the member.
    # The recovery looks for such debits every interval seconds.
    monolith_points_stale_seconds: float = Field(30.0, gt=0)
    monolith_points_recovery_interval: float = Field(5.0, gt=0)
    # Routing inside the monolith (the talk's literal approach): a route table in the gateway's
    # format whose weights name "monolith" for the local share. Off when unset. Backends are
    # where the process registry has them unless overridden; each forwarded call's timeouts.
    monolith_forwarding: dict[str, Any] | None = None
    monolith_forwarding_backends: dict[str, str] = Field(default_factory=dict)
    monolith_forwarding_connect_timeout: float = Field(1.0, gt=0)
    monolith_forwarding_read_timeout: float = Field(4.0, gt=0)
    # Until the read model serves them (stage 9), the monolith composes /api/views pages by
    # asking the owners of members, orders and payments through the gateway at this URL,
    # with the caller's token (monolith/entrypoints/routes/views.py); each call gets what is
    # left of the request's budget. Default: the gateway, where the process registry has it
    # (http://127.0.0.1:SHOP_GATEWAY_PORT).
    monolith_views_compose_url: str | None = None

    @model_validator(mode="after")
    def _monolith_budgets(self) -> Any:
        if self.monolith_member_timeout >= self.monolith_server_limit:
            raise ValueError(
                "SHOP_MONOLITH_MEMBER_TIMEOUT must be below SHOP_MONOLITH_SERVER_LIMIT"
            )
        if self.monolith_points_stale_seconds <= self.monolith_server_limit:
            raise ValueError(
                "SHOP_MONOLITH_POINTS_STALE_SECONDS must be above SHOP_MONOLITH_SERVER_LIMIT: "
                "a debit is stale only once no request could still be using it"
            )
        forwarding = self.monolith_forwarding is not None
        if forwarding and self.monolith_forwarding_read_timeout >= self.monolith_server_limit:
            raise ValueError(
                "SHOP_MONOLITH_FORWARDING_READ_TIMEOUT must be below SHOP_MONOLITH_SERVER_LIMIT"
            )
        return self

    @property
    def forwarding_timeouts(self) -> CallTimeouts:
        return CallTimeouts(
            self.monolith_forwarding_connect_timeout, self.monolith_forwarding_read_timeout
        )


class ReadModelSettings(SharedSettings):
    """The CQRS read model (read_model/, stage 9): views built from the member, order and
    payment events, served at /api/views."""

    read_model_port: int = 8020
    read_model_server_limit: float = Field(2.0, gt=0)
    # Where the views live: a SQLite or PostgreSQL URL (the document as JSON), or a
    # mongodb:// URL (one document per view). Unset: a SQLite file of their own.
    read_model_store_url: str | None = None
    # The read model's own DB: its parked events and which view generation is served.
    read_model_db_url: str | None = None
    # Cache-aside in front of the store when set (redis://host:port/db), entries kept this
    # long at most; the event that changes a view invalidates its entry before that.
    redis_url: str | None = None
    read_model_cache_ttl_seconds: float = Field(30.0, gt=0)
    # Its consumer groups are `<group>.<generation>` (read-model.g1, then g2 after a
    # rebuild...): replicas of one read model share it and split the partitions (give them
    # one store and one Redis); a second, separate read model needs a group of its own.
    read_model_group: str = "read-model"
    # Static membership of its consumer group (see ServiceSettings.group_instance_id).
    read_model_group_instance_id: str | None = None

    @cached_property
    def read_model_db(self) -> str:
        return self.read_model_db_url or f"sqlite:///{self.data_dir / 'read_model.db'}"

    @cached_property
    def read_model_store(self) -> str:
        """The views' store. Unset: beside the read model's own DB, so two read models with
        DBs of their own never share views: on SQLite a file of its own next to it
        (`read_model.db` -> `read_model.views.db`: the views' write-ahead log must not meet
        the DB's rollback journal), on PostgreSQL the same database."""
        if self.read_model_store_url:
            return self.read_model_store_url
        url = make_url(self.read_model_db)
        if url.get_backend_name() != "sqlite" or not url.database:
            return self.read_model_db
        db = Path(url.database)
        return str(url.set(database=str(db.with_name(f"{db.stem}.views{db.suffix}"))))


class GatewaySettings(SharedSettings):
    gateway_port: int = 8000
    gateway_connect_timeout: float = Field(1.0, gt=0)
    gateway_read_timeout: float = Field(6.0, gt=0)
    # The gateway's own answer limit: above every route's read timeout, so a slow backend
    # gets a 504 envelope from the gateway rather than the caller giving up first.
    gateway_server_limit: float = Field(8.0, gt=0)
    # Backend name -> base URL, overriding where the process registry has each process.
    gateway_backends: dict[str, str] = Field(default_factory=dict)
    gateway_state_file: Path | None = None  # default: SHOP_DATA_DIR/gateway-state.json
    gateway_retries: int = Field(1, ge=0, le=3)  # idempotent requests, connection failures only
    gateway_max_connections: int = Field(256, gt=0)
    # Request bodies are read whole before a backend is asked (a slow upload holds no pooled
    # connection): at most this many bytes (413 above), no gap longer than the idle timeout
    # between their pieces (408).
    gateway_max_body_bytes: int = Field(1_048_576, gt=0)
    gateway_body_idle_timeout: float = Field(5.0, gt=0)
    # Each backend's /health/ready is asked every interval; one that stops answering ready
    # (draining, restarting) is out of rotation, and requests for it are held up to this long
    # after it went, so a restart behind the gateway is latency, not errors.
    gateway_health_interval: float = Field(0.25, gt=0)
    gateway_hold_seconds: float = Field(10.0, ge=0)
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

    @model_validator(mode="after")
    def _gateway_budget(self) -> Any:
        if self.gateway_read_timeout >= self.gateway_server_limit:
            raise ValueError("SHOP_GATEWAY_READ_TIMEOUT must be below SHOP_GATEWAY_SERVER_LIMIT")
        return self

    @property
    def gateway_timeouts(self) -> CallTimeouts:
        return CallTimeouts(self.gateway_connect_timeout, self.gateway_read_timeout)

    @property
    def gateway_state_path(self) -> Path:
        return self.gateway_state_file or self.data_dir / "gateway-state.json"


class Settings(MonolithSettings, GatewaySettings):
    """The monolith's and the gateway's settings together: what the `shop` commands that
    address the whole system read (the services' own come from the process registry)."""


S = TypeVar("S", bound="ServiceSettings")


class ServiceSettings(SharedSettings):
    """An extracted service's own settings. Never used as is: `declare` makes the class of one
    service, whose fields read SHOP_<PREFIX>_<FIELD> with that service's defaults."""

    prefix: ClassVar[str] = ""
    db_file: ClassVar[str] = ""

    port: int = 0
    grpc_port: int = 0
    # The service's own DB; must be on the same backend as the legacy DB (dual write is one
    # transaction across both). Default: a SQLite file under SHOP_DATA_DIR.
    db_url: str | None = None
    # The service's answer limit; below the gateway's read timeout (checked at start-up).
    server_limit: float = Field(5.0, gt=0)
    # Where the service reads and writes its tables at start-up (docs/dualwrite.md): shared
    # (the legacy DB, with the batch sync copying it to the service's DB), dual (both in one
    # transaction) or single (its own DB only). Changed live through the admin API.
    data_mode: Literal["shared", "dual", "single"] = "shared"
    sync_interval: float = Field(0.5, gt=0)
    # The gRPC server's grace for in-flight calls at shutdown.
    grpc_grace_seconds: float = Field(5.0, gt=0)
    # Static membership of the service's consumer group (Kafka's group.instance.id): give each
    # replica its own stable id and a restart within the session timeout rebalances nothing.
    # Unset: a dynamic member, which rebalances on every restart.
    group_instance_id: str | None = None
    # Every call it makes to another process (its declaration's `calls`): connect and read
    # timeout, or gRPC deadline. The read timeout must be longer than the callee's own limit
    # (checked at start-up), so the callee answers, even if only its 504, before the caller
    # gives up; a call made for a request gets what is left of that request's budget when
    # that is shorter, and passes it on as the callee's deadline.
    call_connect_timeout: float = Field(1.0, gt=0)
    call_timeout: float = Field(5.5, gt=0)
    # A saga step still unfinished after this long was left by a request that died (no
    # request lives longer than its server limit): the recovery, every interval, undoes it.
    stale_seconds: float = Field(30.0, gt=0)
    recovery_interval: float = Field(5.0, gt=0)

    @cached_property
    def db(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / self.db_file}"

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def call_timeouts(self) -> CallTimeouts:
        return CallTimeouts(self.call_connect_timeout, self.call_timeout)

    @model_validator(mode="after")
    def _recovery_after_requests(self) -> Any:
        if self.stale_seconds <= self.server_limit:
            raise ValueError(
                f"{self.variable('stale_seconds')} must be above "
                f"{self.variable('server_limit')}: a step is stale only once no request could "
                "still be working on it"
            )
        return self

    @classmethod
    def declare(
        cls: type[S], prefix: str, *, port: int, grpc_port: int = 0, **defaults: Any
    ) -> type[S]:
        """The settings class of one service: SHOP_<PREFIX>_PORT and the rest, with these
        defaults; its DB file is `<prefix>.db` unless `db_file` says otherwise."""
        defaults |= {"port": port, "grpc_port": grpc_port}
        db_file = defaults.pop("db_file", f"{prefix}.db")
        fields: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            if name in SharedSettings.model_fields:
                continue
            variable = f"SHOP_{prefix.upper()}_{name.upper()}"
            overrides: dict[str, Any] = {"validation_alias": variable, "alias_priority": 2}
            if name in defaults:
                overrides["default"] = defaults.pop(name)
            fields[name] = (info.annotation, FieldInfo.merge_field_infos(info, **overrides))
        if defaults:
            raise TypeError(f"no service setting {sorted(defaults)}")
        made = create_model(f"{prefix.title()}ServiceSettings", __base__=cls, **fields)
        made.prefix, made.db_file = prefix, db_file
        return made

    @classmethod
    def variable(cls, field: str) -> str:
        return f"SHOP_{cls.prefix.upper()}_{field.upper()}"


class OrderServiceSettings(ServiceSettings):
    """The order service's own, beside every service's: an order left unpaid this long is
    cancelled, and its stock released (SHOP_ORDER_UNPAID_ORDER_SECONDS)."""

    unpaid_order_seconds: float = Field(1800.0, gt=0)


B = TypeVar("B", bound=BaseSettings)


@overload
def load_settings(kind: None = None, **overrides: Any) -> Settings: ...


@overload
def load_settings(kind: type[B], **overrides: Any) -> B: ...


def load_settings(kind: type[BaseSettings] | None = None, **overrides: Any) -> BaseSettings:
    """The settings every entry point loads (each process, each CLI command): from the
    environment, or a one-line error naming the bad variable instead of a traceback."""
    try:
        return (kind or Settings)(**overrides)
    except ValidationError as exc:
        raise click.ClickException(f"invalid configuration: {describe(exc)}") from exc


def describe(exc: ValidationError) -> str:
    def where(loc: tuple) -> str:
        if not loc:
            return ""
        name = str(loc[0])
        return (name if name.startswith("SHOP_") else _variable(name)) + ": "

    return "; ".join(where(e["loc"]) + e["msg"] for e in exc.errors())
