"""The monolith's admin API: the feature switches the stage engine flips (features.py) and the
state of the points debits asked of the member service (points.py). Every call needs
SHOP_ADMIN_TOKEN."""

from __future__ import annotations

from fastapi import APIRouter, Request

from libs.bearer import Actor
from libs.response import ok
from monolith.entrypoints.deps import FeaturesDep
from monolith.entrypoints.schemas import FeatureChange
from monolith.service_layer.features import CHOICES

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/features")
def read_features(_: Actor, features: FeaturesDep):
    return ok({"features": features.values, "choices": CHOICES})


# A plain `def`: a change waits for the requests holding the old values, in the thread pool.
@router.put("/features")
def change_features(body: FeatureChange, actor: Actor, features: FeaturesDep):
    before = features.values
    after = features.change(body.features)
    changed = {k: v for k, v in after.items() if before[k] != v}
    return ok({"features": after, "changed": changed, "by": actor})


@router.get("/points-debits")
def read_points_debits(_: Actor, request: Request):
    """The debits asked of the member service, per status, and the give-backs still failing."""
    return ok(request.app.state.member_service_points.state())


@router.post("/points-debits/recover")
def recover_points_debits(_: Actor, request: Request):
    """Gives back now what a dead request left pending too long (the lifespan does it every
    SHOP_MONOLITH_POINTS_RECOVERY_INTERVAL seconds)."""
    points = request.app.state.member_service_points
    given = points.recover(request.app.state.points_stale_seconds)
    return ok({"given_back": given} | points.state())
