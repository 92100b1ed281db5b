"""The data-mode admin API of every extracted service: where it reads and writes its tables,
changed live. A refused move (one step at a time, drift before single write, a sync job that
cannot drain, two-phase commit disabled, the monolith still serving what the mode takes over:
libs/extraction/preconditions.py) answers 409 with the reason and changes nothing."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict

from libs.bearer import Actor as Admin
from libs.dualwrite import DriftBlocksCutover, Mode
from libs.dualwrite.twophase import PreparedTransactionsDisabled
from libs.extraction.data import ExtractionData
from libs.extraction.preconditions import ModePreconditions, describe
from libs.response import ApiError, ok


class DataModeChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Literal["shared", "dual", "single"]


def _data(request: Request) -> ExtractionData:
    return request.app.state.data


DataDep = Annotated[ExtractionData, Depends(_data)]

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/data-mode")
def read_data_mode(_: Admin, data: DataDep):
    return ok(data.describe())


# A plain `def`: the switch waits for in-flight writes and runs the hooks (drain, reconcile),
# so it runs in the thread pool, not on the event loop.
@router.put("/data-mode")
def change_data_mode(body: DataModeChange, _: Admin, data: DataDep, request: Request):
    target = Mode(body.mode)
    try:
        if target is not data.mode:
            data.switch.check(data.mode, target)  # one step at a time, before anything else
            _check_preconditions(request.app.state.mode_preconditions, target, data)
        return ok(data.change_mode(target))
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


def _check_preconditions(
    preconditions: ModePreconditions | None, target: Mode, data: ExtractionData
) -> None:
    if preconditions is None:
        return
    unmet = preconditions.unmet(target, data.writer.legacy)
    if unmet:
        raise ApiError(409, "MODE_PRECONDITION_FAILED", describe(target, unmet), unmet)


def _plain(report: dict) -> dict:
    # The report's sample rows hold datetimes and decimals; the envelope carries JSON text.
    return json.loads(json.dumps(report, default=str))
