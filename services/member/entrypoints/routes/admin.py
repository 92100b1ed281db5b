"""The data-mode admin API: where this service reads and writes members, changed live.
A refused move (one step at a time, drift before single write, a sync job that cannot drain,
two-phase commit disabled) answers 409 with the reason and changes nothing."""

from __future__ import annotations

import json

from fastapi import APIRouter

from libs.bearer import Actor as Admin
from libs.dualwrite import DriftBlocksCutover, Mode
from libs.dualwrite.twophase import PreparedTransactionsDisabled
from libs.response import ApiError, ok
from services.member.entrypoints.deps import DataDep
from services.member.entrypoints.schemas import DataModeChange
from services.member.service_layer import data_mode

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/data-mode")
def read_data_mode(_: Admin, data: DataDep):
    return ok(data_mode.current(data))


# A plain `def`: the switch waits for in-flight writes and runs the hooks (drain, reconcile),
# so it runs in the thread pool, not on the event loop.
@router.put("/data-mode")
def change_data_mode(body: DataModeChange, _: Admin, data: DataDep):
    try:
        return ok(data_mode.change(data, Mode(body.mode)))
    except DriftBlocksCutover as exc:
        raise ApiError(
            409, "DRIFT_BLOCKS_CUTOVER", str(exc), [_plain(exc.report.to_dict())]
        ) from exc
    except ValueError as exc:
        raise ApiError(409, "MODE_STEP_REFUSED", str(exc)) from exc
    except TimeoutError as exc:
        raise ApiError(409, "SYNC_NOT_DRAINED", str(exc)) from exc
    except PreparedTransactionsDisabled as exc:
        raise ApiError(409, "TWO_PHASE_COMMIT_DISABLED", str(exc)) from exc


def _plain(report: dict) -> dict:
    # The report's sample rows hold datetimes and decimals; the envelope carries JSON text.
    return json.loads(json.dumps(report, default=str))
