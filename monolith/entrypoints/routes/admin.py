"""The monolith's admin API: the feature switches the stage engine flips (features.py) and the
points outbox's state. Every call needs SHOP_ADMIN_TOKEN."""

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


@router.get("/member-points")
def read_member_points(_: Actor, request: Request):
    relay = request.app.state.points_relay
    return ok({"pending": relay.pending(), "parked": relay.parked()})


@router.post("/member-points/flush")
def flush_member_points(_: Actor, request: Request):
    relay = request.app.state.points_relay
    return ok({"delivered": relay.flush(), "pending": relay.pending()})
