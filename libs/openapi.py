"""The OpenAPI document every process serves at /openapi.json, made to say what the process
really answers, so a fuzzer (tests/fuzz) and a client generator can check responses against
it. FastAPI on its own documents a bare 200 and its own 422 body, which no process ever sends:
every answer is the envelope (libs/response), errors included.

Here each operation gets:
- its success status wrapped in the success envelope (`data` is the route's response model
  where it declares one, anything otherwise), with the X-Request-Id and X-Served-By headers;
- the error envelope (components/schemas/ErrorEnvelope) for every error status it can answer:
  the ones every route can (malformed request, unknown resource, method, body too large,
  validation, crash, server time limit, an unavailable dependency), 409 for writes, and the
  ones its dependencies add: 401 for a bearer token, 403 for the admin token, and whatever a
  dependency marked with `answers(...)` says;
- the security scheme it needs, derived from its dependencies: `memberToken` (a member's
  token from login, libs/bearer.current_member) or `adminToken` (SHOP_ADMIN_TOKEN,
  libs/bearer.require_admin). The Authorization header parameter FastAPI lists for them goes:
  OpenAPI says the security scheme describes it.

Nothing here changes what a process answers; only what its document says."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from libs.bearer import current_member, require_admin
from libs.response import REQUEST_ID_HEADER, SERVED_BY_HEADER

MEMBER_TOKEN = "memberToken"
ADMIN_TOKEN = "adminToken"
ERROR_ENVELOPE = "#/components/schemas/ErrorEnvelope"
F = TypeVar("F", bound=Callable[..., Any])

DESCRIPTIONS = {
    400: "Malformed request: a body that is not JSON, an ambiguous path, a bad request line.",
    401: "No bearer token, or one that is not valid (UNAUTHENTICATED, INVALID_TOKEN).",
    403: "The admin token is not valid (FORBIDDEN).",
    404: "No such resource, or not the caller's: ids cannot be probed.",
    405: "The method is not allowed on this path.",
    409: "The request is valid but the current state forbids it.",
    410: "The feature moved to a service (FEATURE_MOVED): call it through the gateway.",
    413: "The request body is larger than the process accepts.",
    422: "The request is not valid (VALIDATION_FAILED: `details` names each field, its "
    "message and type), or it breaks a rule of the domain.",
    429: "Too many requests.",
    500: "The server failed to answer (INTERNAL_ERROR).",
    503: "A dependency did not answer, or the process is not ready; the caller may retry.",
    504: "The request did not finish within the server's limit or the caller's deadline (TIMEOUT).",
}
# Every route: malformed, unknown, wrong method, too large, invalid, crashed, unavailable.
EVERY_ROUTE = (400, 404, 405, 413, 422, 500, 503)
WRITES = (409,)
# libs/timeouts/server.py answers 504 on every path but these.
TIME_LIMIT_EXEMPT = ("/health",)
READ_METHODS = ("GET", "HEAD", "OPTIONS")
_MARK = "__openapi_errors__"


def answers(*statuses: int, security: str | None = None) -> Callable[[F], F]:
    """Marks a dependency with the error statuses it can answer and the security scheme it
    checks, so every route that depends on it documents them: the monolith's feature guards
    (410 once a feature moved), a dependency that checks a member's token by itself."""

    def mark(dependency: F) -> F:
        setattr(dependency, _MARK, (tuple(statuses), security))
        return dependency

    return mark


answers(401, security=MEMBER_TOKEN)(current_member)
answers(401, 403, security=ADMIN_TOKEN)(require_admin)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that answers an error status of its own (login's 401): the
    document gives it the error envelope like every other."""
    return {status: {"description": DESCRIPTIONS.get(status, "An error.")} for status in statuses}


def install_openapi(app: FastAPI) -> None:
    """Replaces `app.openapi` with one that describes the envelope and security, built once
    on first use (routes are added after this call)."""
    framework = app.openapi

    def document() -> dict[str, Any]:
        if not getattr(app.state, "openapi_described", False):
            app.openapi_schema = describe(copy.deepcopy(framework()), app.routes)
            app.state.openapi_described = True
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def describe(schema: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    """`schema` (FastAPI's document for `routes`) with the envelope and security in it."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(envelope_schemas())
    components["headers"] = envelope_headers()
    components["securitySchemes"] = security_schemes()
    for route in api_routes(routes):
        if not route.include_in_schema:
            continue
        for method in route.methods:
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _describe_operation(operation, route, method)
    for framework_only in ("HTTPValidationError", "ValidationError"):
        schemas.pop(framework_only, None)
    return schema


def api_routes(routes: list[Any]) -> Iterator[Any]:
    """Each API route with its effective path and dependencies, the included routers' too:
    FastAPI from 0.128 keeps an included router as one entry and gives each route's context
    (`iter_route_contexts`); before it, `app.routes` held the routes themselves."""
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:
        yield from (route for route in routes if isinstance(route, APIRoute))
        return
    for context in contexts(routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _describe_operation(operation: dict[str, Any], route: Any, method: str) -> None:
    calls = list(_dependency_calls(route.dependant))
    schemes = sorted({scheme for call in calls if (scheme := _marks(call)[1]) is not None})
    if schemes:
        operation["security"] = [{name: []} for name in schemes]
        operation["parameters"] = [
            p
            for p in operation.get("parameters", [])
            if not (p.get("in") == "header" and p.get("name", "").lower() == "authorization")
        ]
        if not operation["parameters"]:
            del operation["parameters"]
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's own body, which install_envelope never sends
    declared = [int(status) for status in responses if status.startswith(("4", "5"))]
    for status, response in responses.items():
        if status.startswith(("2", "3")):
            _wrap_success(response)
    for status in sorted(set(error_statuses(route.path_format, method, calls) + declared)):
        responses[str(status)] = {
            "description": responses.get(str(status), {}).get("description")
            or DESCRIPTIONS.get(status, "An error."),
            "headers": _header_refs(),
            "content": {"application/json": {"schema": {"$ref": ERROR_ENVELOPE}}},
        }


def error_statuses(path: str, method: str, calls: list[Callable[..., Any]]) -> list[int]:
    """The error statuses an operation can answer, from where it is and what it depends on."""
    if path.startswith("/health"):
        # Before any handler: a bad request line, a wrong method; ready answers 503.
        found = {400, 405, 500} | ({503} if path.endswith("/ready") else set())
    else:
        found = set(EVERY_ROUTE)
        if method not in READ_METHODS:
            found.update(WRITES)
    if not path.startswith(TIME_LIMIT_EXEMPT):
        found.add(504)
    for call in calls:
        found.update(_marks(call)[0])
    return sorted(found)


def _marks(call: Callable[..., Any]) -> tuple[tuple[int, ...], str | None]:
    return getattr(call, _MARK, ((), None))


def _dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependency_calls(sub)


def _wrap_success(response: dict[str, Any]) -> None:
    content = response.get("content", {})
    body = content.get("application/json")
    if body is None:
        return
    data = body.get("schema") or {}
    body["schema"] = success_envelope(data)
    response["headers"] = _header_refs()


def success_envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "data", "error", "meta"],
        "additionalProperties": False,
        "properties": {
            "success": {"const": True},
            "data": data,
            "error": {"type": "null"},
            "meta": {"$ref": "#/components/schemas/Meta"},
        },
    }


def envelope_schemas() -> dict[str, Any]:
    return {
        "Meta": {
            "type": "object",
            "required": ["request_id"],
            "additionalProperties": False,
            "properties": {"request_id": {"type": "string"}},
        },
        "Error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {}},
            },
        },
        "ErrorEnvelope": {
            "type": "object",
            "description": "Every error of every process: success false, data null.",
            "required": ["success", "data", "error", "meta"],
            "additionalProperties": False,
            "properties": {
                "success": {"const": False},
                "data": {"type": "null"},
                "error": {"$ref": "#/components/schemas/Error"},
                "meta": {"$ref": "#/components/schemas/Meta"},
            },
        },
    }


def envelope_headers() -> dict[str, Any]:
    return {
        REQUEST_ID_HEADER: {
            "description": "The request's id: the caller's X-Request-Id when safe, else new.",
            "required": True,
            "schema": {"type": "string"},
        },
        SERVED_BY_HEADER: {
            "description": "The process that produced the response, e.g. monolith.",
            "required": True,
            "schema": {"type": "string"},
        },
    }


def _header_refs() -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in envelope_headers()}


def security_schemes() -> dict[str, Any]:
    return {
        MEMBER_TOKEN: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A member's token, from POST /api/members/login.",
        },
        ADMIN_TOKEN: {
            "type": "http",
            "scheme": "bearer",
            "description": "The admin token every process is configured with (SHOP_ADMIN_TOKEN).",
        },
    }
