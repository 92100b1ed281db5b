"""The switches the stage engine flips in the running monolith, kept in the legacy DB so a
restart does not bring a retired feature back.

members:        serving    the monolith's member API answers as it always did;
                read-only  reads still answer, writes are refused with FEATURE_MOVED (dual
                           write: every member write must go through the member service);
                retired    every member route answers FEATURE_MOVED (single write).
member_points:  local      payments and refunds move points in the legacy member tables;
                member-service  they go to the member service through the points outbox.
orders:         serving / read-only / retired, as members, for /api/orders (the order
                service's dual and single write).
payments:       serving / read-only / retired, as members, for /api/payments; once payments
                are not served here, the payment service recovers the points debits and the
                monolith's recovery loop stands still.

All of them live in one `Switch`: a handler holds the values it started with until it ends,
and a change waits for those handlers, so no write starts under one setting and commits under
the next."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import sqlalchemy as sa

from libs.errors import Invalid
from libs.switch import Switch
from monolith.adapters.tables import features

CHOICES: dict[str, tuple[str, ...]] = {
    "members": ("serving", "read-only", "retired"),
    "member_points": ("local", "member-service"),
    "orders": ("serving", "read-only", "retired"),
    "payments": ("serving", "read-only", "retired"),
}
DEFAULTS = {name: values[0] for name, values in CHOICES.items()}

Values = Mapping[str, str]


def stored_values(engine: sa.Engine) -> dict[str, str]:
    """The values a monolith on this legacy DB serves (stored before they take effect); an
    extracted service checks them before its data mode moves (libs/extraction/
    preconditions.py)."""
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(features.c.name, features.c.value)).all())
    return DEFAULTS | _known(stored)


class Features:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.switch: Switch[Values] = Switch(stored_values(engine))
        self.switch.add_hook(self.store)

    @property
    def values(self) -> dict[str, str]:
        return dict(self.switch.value)

    def change(self, changes: Mapping[str, str]) -> dict[str, str]:
        """Validates every change before any is made; stores them, then switches."""
        check(changes)
        target = self.values | dict(changes)
        if target != self.values:
            self.switch.switch_to(target)
        return self.values

    def store(self, _old: Values, new: Values) -> None:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            for name, value in new.items():
                conn.execute(features.delete().where(features.c.name == name))
                conn.execute(features.insert().values(name=name, value=value, updated_at=now))


def check(changes: Mapping[str, str]) -> None:
    for name, value in changes.items():
        if name not in CHOICES:
            raise Invalid("UNKNOWN_FEATURE", f"No feature {name!r}; features: {list(CHOICES)}.")
        if value not in CHOICES[name]:
            raise Invalid(
                "INVALID_FEATURE_VALUE",
                f"{name} takes one of {list(CHOICES[name])}, not {value!r}.",
            )


def _known(stored: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in stored.items() if k in CHOICES and v in CHOICES[k]}
