from __future__ import annotations

import httpx
import pytest

from libs.response import (
    BadEnvelope,
    ServiceError,
    envelope,
    error_body,
    is_valid_envelope,
    parse_envelope,
)


def test_a_success_and_an_error_envelope_are_both_valid():
    assert is_valid_envelope(envelope({"id": 1}, request_id="r1"))
    assert is_valid_envelope(
        envelope(error=error_body("OUT_OF_STOCK", "none left"), request_id="r1")
    )


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"success": True, "data": 1},
        {"success": True, "data": 1, "error": None, "meta": {}},
        {
            "success": False,
            "data": None,
            "error": {"code": "lower", "message": "", "details": []},
            "meta": {"request_id": "r"},
        },
        {
            "success": False,
            "data": 1,
            "error": {"code": "X", "message": "", "details": []},
            "meta": {"request_id": "r"},
        },
        {"success": True, "data": 1, "error": None, "meta": {"request_id": "r"}, "extra": 1},
    ],
)
def test_anything_else_is_not_an_envelope(body):
    assert not is_valid_envelope(body)


def test_the_client_returns_data_of_a_success():
    response = httpx.Response(200, json=envelope({"id": 7}, request_id="r"))
    assert parse_envelope(response) == {"id": 7}


def test_the_client_raises_the_callees_code_on_an_error():
    body = envelope(error=error_body("ORDER_PAID", "refund first", [{"order": 3}]), request_id="r")
    response = httpx.Response(409, json=body, headers={"X-Served-By": "order-service"})
    with pytest.raises(ServiceError) as caught:
        parse_envelope(response)
    assert (caught.value.status, caught.value.code) == (409, "ORDER_PAID")
    assert caught.value.details == [{"order": 3}]
    assert caught.value.served_by == "order-service"


def test_the_client_calls_a_non_envelope_a_contract_breach():
    with pytest.raises(BadEnvelope):
        parse_envelope(httpx.Response(502, text="<html>Bad Gateway</html>"))
