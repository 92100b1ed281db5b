"""Each extraction, declared once: the service that takes the data over, the migration spec of
the tables that move, the gateway routes it takes, the monolith's feature switches it flips,
and how its four stages read. Everything else is derived from these records:

- the process table (`infra.processes.PROCESSES`) and the start-up timeout edges;
- the stage list (`infra.stages.STAGES`): per extraction, shared DB + 9:1, the metric-gated
  ramp, dual write, single write;
- `shop reconcile NAME`, and where the demo looks for each acknowledged write at each stage.

Adding an extraction is its service package plus one `Extraction` in `EXTRACTIONS`. A test
declares one more the same way (tests/infra/test_throwaway_extraction.py)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from infra.settings import OrderServiceSettings, ServiceSettings, SharedSettings
from libs.dualwrite import MigrationSpec
from libs.extraction import ExtractionConfig
from libs.extraction.preconditions import ModePreconditions
from monolith.service_layer.features import stored_values

Phase = Literal["before", "shared", "ramp", "dual", "single"]
PHASES: tuple[Phase, ...] = ("shared", "ramp", "dual", "single")


@dataclass(frozen=True)
class Service:
    """The process an extraction adds: `shop run NAME` builds it with `factory(settings)`."""

    name: str  # process and backend name, e.g. "member-service"
    factory: str  # "package.module:function", called with its settings, returns the ASGI app
    settings: type[ServiceSettings]  # ServiceSettings.declare(prefix, port=..., ...)
    owns: str  # one line for `shop up`: what it owns
    # The processes it calls, each with its settings' call timeouts (SHOP_<PREFIX>_CALL_*):
    # checked at start-up against the callee's own limit.
    calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageText:
    """How one of the extraction's stages reads in `shop stage list` and the demo."""

    name: str
    traffic: str
    data: str
    watch: str = ""


@dataclass(frozen=True)
class Extraction:
    name: str  # the migration's name: spec.name, `shop reconcile NAME`
    service: Service
    spec: str  # "package.module:ATTR" of its MigrationSpec (imported only when used)
    routes: Mapping[str, str]  # gateway routes the service takes over: name -> path prefix
    # The monolith's feature switches per phase, in the order they are flipped: "before" is
    # their value until the extraction starts (stage 0), the others are set on entering it.
    features: Mapping[Phase, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    first_share: int = 10  # percent of the routes on the service in the shared-DB stage
    ramp: tuple[int, ...] = (50, 100)  # the metric-gated ramp's steps to all traffic
    texts: Mapping[Phase, StageText] = field(default_factory=dict)
    # Extractions that name the same wave, one after the other in EXTRACTIONS, walk their
    # four stages together (orders and payments: "commerce"); the wave's texts are its first
    # extraction's. Empty: a wave of its own.
    wave: str = ""

    @property
    def wave_name(self) -> str:
        return self.wave or self.name

    def migration(self) -> MigrationSpec:
        module, _, attribute = self.spec.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def text(self, phase: Phase, wave: tuple[Extraction, ...] = ()) -> StageText:
        """`wave`: the extractions walked with this one (itself first), which the generated
        texts name together."""
        if phase in self.texts:
            return self.texts[phase]
        wave = wave or (self,)
        routes = ", ".join(r for e in wave for r in e.routes)
        service = " + ".join(e.service.name for e in wave)
        share = f"{100 - self.first_share}:{self.first_share}"
        return {
            "shared": StageText(
                f"{self.name} shared DB",
                f"{routes} {share} monolith : {service}",
                f"{service} reads and writes the legacy DB; the batch sync copies it to its DB",
                "shop_sync_lag_seconds",
            ),
            "ramp": StageText(
                f"{self.name} ramp",
                f"{routes} {share} -> 0:10, metric-gated, rolled back on a breach",
                "as the shared-DB stage",
                "the ramp's history; error rate and p99 per backend",
            ),
            "dual": StageText(
                f"{self.name} dual write",
                f"{routes} 0:10",
                f"every {self.name} write hits both DBs in one transaction; the sync stopped",
                f"`shop reconcile {self.name}` reports no drift",
            ),
            "single": StageText(
                f"{self.name} single write",
                f"{routes} 0:10",
                f"{service}'s DB only; the legacy tables frozen",
            ),
        }[phase]

    def settings(self, **overrides: Any) -> ServiceSettings:
        return self.service.settings(**overrides)

    def config(
        self, settings: ServiceSettings, upgrade: Callable[[sa.Engine], None]
    ) -> ExtractionConfig:
        """What `libs.extraction.create_extraction_app` needs, from the service's settings;
        `upgrade` runs the service's own migrations."""
        return ExtractionConfig(
            process=self.service.name,
            spec=self.migration(),
            legacy_url=settings.legacy_db_url,
            new_url=settings.db,
            upgrade=upgrade,
            mode=settings.data_mode,
            sync_interval=settings.sync_interval,
            server_limit=settings.server_limit,
            admin_token=settings.admin_token,
            preconditions=ModePreconditions(self.mode_requires(), monolith_features),
            mode_file=settings.data_dir / f"{self.service.name}.data-mode.json",
        )

    def mode_requires(self) -> dict[str, dict[str, frozenset[str]]]:
        """Data mode -> monolith feature -> the values that allow it: the value the feature
        is given on entering that phase (or the last phase before that set it), or any a
        later phase gives it (single write's `retired` allows dual write too, so the stage
        engine's walk back, data mode first, is not refused)."""
        order: tuple[Phase, ...] = ("dual", "single")
        required: dict[str, dict[str, frozenset[str]]] = {}
        for index, mode in enumerate(order):
            current: dict[str, str] = {}
            for phase in order[: index + 1]:
                current |= dict(self.features.get(phase, ()))
            later = [dict(self.features.get(p, ())) for p in order[index + 1 :]]
            required[mode] = {
                name: frozenset({value, *(f[name] for f in later if name in f)})
                for name, value in current.items()
            }
        return required


def monolith_features(legacy: sa.Engine) -> Mapping[str, str]:
    """The monolith's feature switches as it would serve them, from the legacy DB."""
    return stored_values(legacy)


def legacy_url(settings: SharedSettings) -> str:
    return settings.legacy_db_url


MEMBERS = Extraction(
    name="members",
    service=Service(
        "member-service",
        "services.member.entrypoints.app:create_app",
        ServiceSettings.declare("member", port=8011, grpc_port=50051),
        "member DB: members, point ledger",
    ),
    spec="services.member.adapters.migration:MEMBERS",
    routes={"members": "/api/members"},
    features={
        "before": (("members", "serving"), ("member_points", "local")),
        "dual": (("member_points", "member-service"), ("members", "read-only")),
        "single": (("members", "retired"),),
    },
    texts={
        "shared": StageText(
            "member shared DB",
            "member routes 9:1 monolith : member-service",
            "the member service reads and writes the legacy DB; the batch sync copies it to "
            "the member DB",
            "shop_sync_lag_seconds on the member service; the console's member split",
        ),
        "ramp": StageText(
            "member ramp",
            "member routes 9:1 -> 5:5 -> 0:10, metric-gated, rolled back on a breach",
            "as stage 1",
            "the ramp's history in the console; error rate and p99 per backend",
        ),
        "dual": StageText(
            "member dual write",
            "member routes 0:10; the monolith's member writes and its points go to the service",
            "every member write hits both DBs in one transaction; the sync job stopped",
            "shop_dual_write_transactions_total; `shop reconcile members` reports no drift",
        ),
        "single": StageText(
            "member single write",
            "member routes 0:10; the monolith's member feature retired",
            "the member DB only; the legacy member tables frozen",
            "the monolith's /api/members answers 410 FEATURE_MOVED; writes reach the member DB "
            "only",
        ),
    },
)

# Orders and payments move together ("commerce"), each to its own service and DB: the same
# four steps, taken by both in each stage.
ORDERS = Extraction(
    name="orders",
    service=Service(
        "order-service",
        "services.order.entrypoints.app:create_app",
        OrderServiceSettings.declare("order", port=8012, grpc_port=50052),
        "order DB: orders, order lines (stock held at the monolith's catalogue)",
        calls=("monolith",),
    ),
    spec="services.order.adapters.migration:ORDERS",
    routes={"orders": "/api/orders"},
    features={
        "before": (("orders", "serving"),),
        "dual": (("orders", "read-only"),),
        "single": (("orders", "retired"),),
    },
    wave="commerce",
    texts={
        "shared": StageText(
            "commerce shared DB",
            "order and payment routes 9:1 monolith : order-service, payment-service",
            "both services read and write the legacy DB; the batch sync copies orders and "
            "payments to their DBs; stock is held at the monolith's catalogue",
            "shop_sync_lag_seconds on both services; the console's order and payment splits",
        ),
        "ramp": StageText(
            "commerce ramp",
            "order and payment routes 9:1 -> 5:5 -> 0:10, metric-gated, rolled back on a breach",
            "as stage 5",
            "the ramps' history in the console; error rate and p99 per backend",
        ),
        "dual": StageText(
            "commerce dual write",
            "order and payment routes 0:10; the monolith's order and payment writes refused",
            "every order, order line and payment write hits both DBs in one transaction; "
            "the sync jobs stopped; events from the services' own outboxes",
            "shop_dual_write_transactions_total; `shop reconcile orders` and `shop reconcile "
            "payments` report no drift",
        ),
        "single": StageText(
            "commerce single write",
            "order and payment routes 0:10; the monolith's order and payment features retired",
            "the order and payment DBs only; the legacy order and payment tables frozen",
            "the monolith's /api/orders and /api/payments answer 410 FEATURE_MOVED",
        ),
    },
)

PAYMENTS = Extraction(
    name="payments",
    service=Service(
        "payment-service",
        "services.payment.entrypoints.app:create_app",
        ServiceSettings.declare("payment", port=8013, grpc_port=50053),
        "payment DB: payments, idempotency keys, points debits",
        calls=("order-service", "member-service"),
    ),
    spec="services.payment.adapters.migration:PAYMENTS",
    routes={"payments": "/api/payments"},
    features={
        "before": (("payments", "serving"),),
        "dual": (("payments", "read-only"),),
        "single": (("payments", "retired"),),
    },
    wave="commerce",
)

# In the order they are migrated: the stages follow it.
EXTRACTIONS: tuple[Extraction, ...] = (MEMBERS, ORDERS, PAYMENTS)


def waves(extractions: tuple[Extraction, ...]) -> list[tuple[Extraction, ...]]:
    """The extractions grouped as they are walked: consecutive ones naming the same wave."""
    grouped: list[list[Extraction]] = []
    for e in extractions:
        if grouped and grouped[-1][0].wave_name == e.wave_name:
            grouped[-1].append(e)
        else:
            grouped.append([e])
    return [tuple(group) for group in grouped]


def by_name(extractions: tuple[Extraction, ...] = EXTRACTIONS) -> dict[str, Extraction]:
    return {e.name: e for e in extractions}
