"""Server side of the envelope: every response, framework errors included, has one shape."""

from __future__ import annotations

import logging
import re
import uuid
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs import context
from libs.asgi import ResponseWatch
from libs.errors import DomainError
from libs.response.envelope import (
    ApiError,
    envelope,
    error_body,
)

log = logging.getLogger("shop.response")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def ok(data: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        envelope(jsonable_encoder(data), request_id=context.request_id.get()),
        status_code=status,
        headers=headers,
    )


def error_response(
    status: int, code: str, message: str, details: list[Any] | None = None, headers=None
) -> JSONResponse:
    body = envelope(error=error_body(code, message, details), request_id=context.request_id.get())
    return JSONResponse(body, status_code=status, headers=headers)


def install_envelope(app: FastAPI, service_name: str) -> None:
    """Exception handlers for every error FastAPI/Starlette can raise, plus the request-id and
    served-by headers. Call before adding other middleware: the context must be outermost."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(UnhandledErrorGuard)
    app.state.service_name = service_name


class RequestContext:
    """Outermost middleware: picks or makes the request id, and stamps every response start
    (including ones produced by the timeout guard) with X-Request-Id and X-Served-By."""

    def __init__(self, app: ASGIApp, service_name: str) -> None:
        self.app = app
        self.served_by = service_name.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        rid = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = context.request_id.set(rid)

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"x-request-id", b"x-served-by")
                ]
                headers += [(b"x-request-id", rid.encode()), (b"x-served-by", self.served_by)]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, stamped)
        finally:
            context.request_id.reset(token)


class UnhandledErrorGuard:
    """Turns a crash into a 500 envelope instead of Starlette's plain-text page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watch = ResponseWatch(send)
        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if watch.started:
                raise
            response = error_response(500, "INTERNAL_ERROR", "The server failed to answer.")
            await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return error_response(exc.status, exc.code, exc.message)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"No resource at {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    code = (
        HTTPStatus(exc.status_code).name
        if exc.status_code in HTTPStatus._value2member_map_
        else "HTTP_ERROR"
    )
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(sorted(_methods_at(request)))
    return error_response(exc.status_code, code, message, headers=headers or None)


def _methods_at(request: Request) -> set[str]:
    """Every method the request's path has. Starlette's router stops at the first route whose
    path matches and names only that route's methods in Allow, so GET and PATCH
    /api/members/me, two routes, answered `Allow: GET`. Each method is asked of every route
    (matches() sees through included routers too)."""
    return {
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    }


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "field": ".".join(str(part) for part in err.get("loc", ())),
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    if any(d["type"] == "json_invalid" for d in details):
        return error_response(400, "INVALID_JSON", "The request body is not valid JSON.", details)
    return error_response(422, "VALIDATION_FAILED", "The request is not valid.", details)
