"""Every process's OpenAPI document says what the process answers: the envelope on success and
on every error status, and the security scheme each authenticated route needs, derived from
its dependencies (libs/openapi.py). Built from the real apps, without starting them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from infra.processes import PROCESSES
from libs.bearer import CurrentMember
from libs.openapi import ADMIN_TOKEN, ERROR_ENVELOPE, MEMBER_TOKEN, answers
from libs.service import ServiceOptions, create_service_app
from tests.support.servers import serving

METHODS = ("get", "put", "post", "patch", "delete")
# One authenticated and one open operation of each process, spelled out by hand: the document
# derives them from dependencies, this list checks the derivation.
KNOWN = {
    "monolith": [
        ("get", "/api/members/me", MEMBER_TOKEN),
        ("get", "/api/views/my-page", MEMBER_TOKEN),
        ("put", "/internal/stock-holds/{order_id}", ADMIN_TOKEN),
        ("put", "/admin/features", ADMIN_TOKEN),
        ("get", "/api/products", None),
        ("get", "/api/products/{product_id}", None),
    ],
    "member-service": [
        ("patch", "/api/members/me", MEMBER_TOKEN),
        ("put", "/admin/data-mode", ADMIN_TOKEN),
        ("post", "/api/members", None),
    ],
    "order-service": [
        ("post", "/api/orders", MEMBER_TOKEN),
        ("get", "/admin/events/parked", ADMIN_TOKEN),
    ],
    "payment-service": [
        ("post", "/api/payments/{payment_id}/refund", MEMBER_TOKEN),
        ("get", "/admin/points-debits", ADMIN_TOKEN),
    ],
    "read-model": [
        ("get", "/api/views/orders/{order_id}", MEMBER_TOKEN),
        ("post", "/admin/read-model/rebuild", ADMIN_TOKEN),
    ],
    "gateway": [("put", "/admin/routes", ADMIN_TOKEN), ("get", "/health/ready", None)],
}


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> dict[str, dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("openapi")
    found = {}
    for name, spec in PROCESSES.items():
        found[name] = spec.build(spec.load(data_dir=data_dir)).openapi()
    return found


def operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_every_operation_answers_the_envelope(documents, name):
    document = documents[name]
    schemas = document["components"]["schemas"]
    assert {"ErrorEnvelope", "Error", "Meta"} <= set(schemas)
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 body: never sent
    assert schemas["Error"]["required"] == ["code", "message", "details"]
    assert list(operations(document))
    for method, path, operation in operations(document):
        responses = operation["responses"]
        successes = [s for s in responses if s.startswith("2")]
        assert len(successes) == 1, (method, path, successes)
        body = responses[successes[0]]["content"]["application/json"]["schema"]
        assert body["properties"]["success"] == {"const": True}
        assert body["required"] == ["success", "data", "error", "meta"]
        assert set(responses[successes[0]]["headers"]) == {"X-Request-Id", "X-Served-By"}
        errors = [int(s) for s in responses if s[0] in "45"]
        assert {400, 405, 500} <= set(errors), (method, path)
        if not path.startswith("/health"):
            assert {404, 413, 422, 503, 504} <= set(errors), (method, path)
        for status in errors:
            content = responses[str(status)]["content"]["application/json"]
            assert content["schema"] == {"$ref": ERROR_ENVELOPE}, (method, path, status)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_authenticated_operations_name_their_security_scheme(documents, name):
    document = documents[name]
    assert set(document["components"]["securitySchemes"]) == {MEMBER_TOKEN, ADMIN_TOKEN}
    for method, path, scheme in KNOWN[name]:
        operation = document["paths"][path][method]
        if scheme is None:
            assert "security" not in operation
            assert "401" not in operation["responses"]
        else:
            assert operation["security"] == [{scheme: []}]
            assert "401" in operation["responses"]
            assert ("403" in operation["responses"]) == (scheme == ADMIN_TOKEN)
    for method, path, operation in operations(document):
        # The scheme describes the Authorization header: no parameter for it besides.
        headers = [
            p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"
        ]
        assert "authorization" not in headers, (method, path)
        # Every admin path needs the admin token; every 401 comes with a scheme.
        if path.startswith(("/admin", "/internal")):
            assert operation.get("security") == [{ADMIN_TOKEN: []}], (method, path)
        if not path.endswith("/login"):  # wrong credentials: a 401 without a token
            assert ("401" in operation["responses"]) == ("security" in operation), (method, path)


def test_declared_success_statuses_and_the_monolith_s_moved_features(documents):
    monolith = documents["monolith"]["paths"]
    assert "201" in monolith["/api/orders"]["post"]["responses"]
    assert "201" in documents["payment-service"]["paths"]["/api/payments"]["post"]["responses"]
    assert (
        "202" in documents["read-model"]["paths"]["/admin/read-model/rebuild"]["post"]["responses"]
    )
    # The feature guards answer 410 once a feature moved; the products routes have none.
    assert "410" in monolith["/api/members/me"]["get"]["responses"]
    assert "410" in monolith["/api/payments"]["post"]["responses"]
    assert "410" not in monolith["/api/products"]["get"]["responses"]
    # Login declares its own 401 (wrong credentials), in the envelope like the rest.
    login = documents["member-service"]["paths"]["/api/members/login"]["post"]
    assert login["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": ERROR_ENVELOPE
    }
    assert "security" not in login
    # A write may conflict; a read does not.
    assert "409" in monolith["/api/orders/{order_id}/cancel"]["post"]["responses"]
    assert "409" not in monolith["/api/orders"]["get"]["responses"]


def test_a_marked_dependency_and_the_served_document():
    """A new process gets all of it from create_service_app; the document served at
    /openapi.json is the described one, and answering is unchanged."""
    app: FastAPI = create_service_app(ServiceOptions("probe"))

    @answers(429)
    def throttled() -> None:
        return None

    @app.get("/api/things", dependencies=[Depends(throttled)])
    def things(member_id: CurrentMember):
        return {"member": member_id}

    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        served = client.get("/openapi.json").json()
        refused = client.get("/api/things")
    operation = served["paths"]["/api/things"]["get"]
    assert operation["security"] == [{MEMBER_TOKEN: []}]
    assert {"401", "429", "504"} <= set(operation["responses"])
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "UNAUTHENTICATED"
