from __future__ import annotations

import pytest

from infra.processes import check_process_budgets
from libs.timeouts import CallTimeouts, Edge, TimeoutBudgetError, check_budgets


def test_a_read_timeout_longer_than_the_callees_limit_passes():
    check_budgets([Edge("gateway", "monolith", CallTimeouts(1, 6))], {"monolith": 5})


def test_a_read_timeout_not_longer_than_the_callees_limit_fails_naming_the_edge():
    with pytest.raises(TimeoutBudgetError, match=r"gateway -> monolith: read timeout 5s"):
        check_budgets([Edge("gateway", "monolith", CallTimeouts(1, 5))], {"monolith": 5})


def test_a_callee_without_a_declared_limit_fails():
    with pytest.raises(TimeoutBudgetError, match="has no server limit"):
        check_budgets([Edge("gateway", "ghost", CallTimeouts(1, 5))], {})


def test_timeouts_must_be_positive():
    with pytest.raises(ValueError):
        CallTimeouts(0, 5)


def test_the_start_up_check_catches_a_misconfiguration_from_either_side(monkeypatch):
    check_process_budgets("gateway")  # the defaults hold
    monkeypatch.setenv("SHOP_MONOLITH_SERVER_LIMIT", "8")  # above the gateway's read timeout 6
    for process in ("gateway", "monolith"):
        with pytest.raises(TimeoutBudgetError, match="gateway -> monolith"):
            check_process_budgets(process)
    check_process_budgets("member-service")  # its own edge is fine


def test_every_declared_extraction_gets_its_edge_checked(monkeypatch):
    """The member service's edge comes from its declaration (infra/extractions.py), and its
    limit from its own variable."""
    monkeypatch.setenv("SHOP_MEMBER_SERVER_LIMIT", "7")
    with pytest.raises(TimeoutBudgetError, match="gateway -> member-service: read timeout 6s"):
        check_process_budgets("member-service")
    check_process_budgets("monolith")


def test_the_services_calls_are_checked_against_their_callees_limits(monkeypatch):
    """The order service calls the monolith (stock holds); the payment service calls the
    order service and the member service over gRPC: each with its own call timeout, which
    must outlast the callee's limit, checked when either side starts."""
    for process in ("order-service", "payment-service", "monolith", "member-service"):
        check_process_budgets(process)  # the defaults hold
    monkeypatch.setenv("SHOP_ORDER_CALL_TIMEOUT", "4")
    for process in ("order-service", "monolith"):
        with pytest.raises(TimeoutBudgetError, match="order-service -> monolith: read timeout 4s"):
            check_process_budgets(process)
    monkeypatch.delenv("SHOP_ORDER_CALL_TIMEOUT")
    monkeypatch.setenv("SHOP_MEMBER_SERVER_LIMIT", "5.8")  # past the payment service's 5.5 s
    with pytest.raises(TimeoutBudgetError, match="payment-service -> member-service"):
        check_process_budgets("payment-service")
