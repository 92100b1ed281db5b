"""gRPC core lookups over a real socket."""

from __future__ import annotations

import grpc
import pytest

from services.member.client import BlockingMemberClient

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def test_get_member_answers_the_member_as_the_http_api_does(member_service):
    with member_service("single") as service:
        email, member_id = service.signup("Kim")
        client = BlockingMemberClient(service.grpc_target, timeout=2.0)
        try:
            member = client.get_member(member_id)
        finally:
            client.close()
        assert (member.id, member.email, member.name, member.points) == (member_id, email, "Kim", 0)
        assert not member.HasField("phone")


def test_an_unknown_member_is_not_found(member_service):
    with member_service("shared") as service:
        client = BlockingMemberClient(service.grpc_target, timeout=2.0)
        try:
            with pytest.raises(grpc.RpcError) as caught:
                client.get_member(424242)
        finally:
            client.close()
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
