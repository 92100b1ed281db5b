"""gRPC core lookups over a real socket."""

from __future__ import annotations

import grpc
import pytest

from services.member.client import MemberClient

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


async def test_get_member_answers_the_member_as_the_http_api_does(member_service):
    with member_service("single") as service:
        email, member_id = service.signup("Kim")
        async with MemberClient(service.grpc_target, timeout=2.0) as client:
            member = await client.get_member(member_id)
        assert (member.id, member.email, member.name, member.points) == (member_id, email, "Kim", 0)
        assert not member.HasField("phone")


async def test_an_unknown_member_is_not_found(member_service):
    with member_service("shared") as service:
        async with MemberClient(service.grpc_target, timeout=2.0) as client:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.get_member(424242)
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_verify_token_names_the_member_or_refuses(member_service):
    with member_service("shared") as service:
        email, member_id = service.signup("Lee")
        token = service.token(email)
        async with MemberClient(service.grpc_target, timeout=2.0) as client:
            assert await client.verify_token(token) == member_id
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.verify_token("not-a-token")
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
