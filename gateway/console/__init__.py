"""The migration console: one static page (no build step, no CDN) polling /admin/status."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from libs.response import ApiError

_HERE = Path(__file__).parent
_ASSETS = {
    "console.js": "text/javascript",
    "console.css": "text/css",
}


def console_router() -> APIRouter:
    router = APIRouter(tags=["console"])

    @router.get("/console", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(_HERE / "index.html", media_type="text/html")

    @router.get("/console/{asset}", include_in_schema=False)
    async def asset(asset: str) -> FileResponse:
        if asset not in _ASSETS:
            raise ApiError(404, "NOT_FOUND", f"No console asset '{asset}'.")
        return FileResponse(_HERE / asset, media_type=_ASSETS[asset])

    return router
