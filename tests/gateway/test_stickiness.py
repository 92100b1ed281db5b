"""Done when: at 9:1, 1,000 members sending 10 requests each split 90/10 within 2 points by
member, and every member saw exactly one backend."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import aiohttp
import httpx
import pytest

from tests.gateway.conftest import RunningGateway


async def send_as_members(
    gateway: RunningGateway, members: range, per_member: int
) -> dict[int, set[str]]:
    seen: dict[int, set[str]] = defaultdict(set)
    tokens = {m: gateway.member_token(m) for m in members}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for _ in range(per_member):
        for m in members:
            queue.put_nowait(m)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            m = queue.get_nowait()
            headers = {"Authorization": f"Bearer {tokens[m]}"}
            async with session.get(f"{gateway.url}/api/members/{m}", headers=headers) as answer:
                assert answer.status == 200
                seen[m].add(answer.headers["X-Served-By"])

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(16)))
    return seen


@pytest.mark.slow
async def test_at_nine_to_one_members_split_ninety_ten_and_each_sees_one_backend(
    gateway: RunningGateway,
):
    await asyncio.to_thread(gateway.set_weights, "members", {"monolith": 9, "member-service": 1})
    seen = await send_as_members(gateway, range(1, 1001), per_member=10)
    assert len(seen) == 1000
    assert all(len(backends) == 1 for backends in seen.values())
    on_new = sum(1 for backends in seen.values() if backends == {"member-service"})
    assert 80 <= on_new <= 120, f"{on_new / 10:.1f}% of members on the new service"


async def test_raising_the_share_moves_members_only_from_old_to_new(gateway: RunningGateway):
    await asyncio.to_thread(gateway.set_weights, "members", {"monolith": 9, "member-service": 1})
    before = await send_as_members(gateway, range(1, 301), per_member=1)
    await asyncio.to_thread(gateway.set_weights, "members", {"monolith": 5, "member-service": 5})
    after = await send_as_members(gateway, range(1, 301), per_member=1)
    moves = {(min(before[m]), min(after[m])) for m in before if before[m] != after[m]}
    assert moves == {("monolith", "member-service")}


def test_an_anonymous_caller_gets_a_cookie_and_keeps_its_backend(gateway: RunningGateway):
    gateway.set_weights("members", {"monolith": 1, "member-service": 1})
    with httpx.Client(base_url=gateway.url) as browser:
        first = browser.get("/api/members/me")
        assert "shop_sid=" in first.headers["set-cookie"]
        backends = {browser.get("/api/members/me").headers["x-served-by"] for _ in range(20)}
    assert backends == {first.headers["x-served-by"]}
