"""The group coordinator's request side: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
offset-commit checks and session expiry. One broker, so it coordinates every group."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from infra.devbroker.groups.group import (
    FENCED_INSTANCE_ID,
    ILLEGAL_GENERATION,
    INCONSISTENT_GROUP_PROTOCOL,
    INVALID_SESSION_TIMEOUT,
    MEMBER_ID_REQUIRED,
    NONE,
    REBALANCE_IN_PROGRESS,
    UNKNOWN_MEMBER_ID,
    Group,
    GroupState,
    Member,
    resolve,
)
from infra.devbroker.groups.store import GroupStore

_TICK_SECONDS = 0.02


class GroupCoordinator:
    def __init__(
        self,
        min_session_ms: int,
        max_session_ms: int,
        initial_rebalance_delay_ms: int,
        store: GroupStore | None = None,
    ) -> None:
        self.groups: dict[str, Group] = {}
        self._store = store
        self._min_session_ms = min_session_ms
        self._max_session_ms = max_session_ms
        self._initial_delay_ms = initial_rebalance_delay_ms
        self._reaper: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._store is not None:
            now = _now()
            for record in self._store.loaded.values():
                self._track(Group.restore(record, self._initial_delay_ms, now))
        self._reaper = asyncio.create_task(self._reap_forever(), name="group-session-reaper")

    async def stop(self) -> None:
        if self._reaper:
            self._reaper.cancel()

    def _track(self, group: Group) -> Group:
        self.groups[group.group_id] = group
        if self._store is not None:
            group.on_stored = self._write
        return group

    def _write(self, group: Group) -> None:
        assert self._store is not None
        self._store.store(group.snapshot())

    async def join(self, request: dict[str, Any], client_id: str, host: str) -> dict[str, Any]:
        """request: the JoinGroup body plus `require_known_member_id` (v4+)."""
        now = _now()
        session_ms = request["session_timeout_ms"]
        if not self._min_session_ms <= session_ms <= self._max_session_ms:
            return _error(INVALID_SESSION_TIMEOUT, request["member_id"])
        protocols = [(p["name"], p["metadata"]) for p in request["protocols"]]
        group_id, member_id = request["group_id"], request["member_id"]
        instance_id = request.get("group_instance_id")
        group = self.groups.get(group_id)
        if group is None:
            if member_id:
                return _error(UNKNOWN_MEMBER_ID, member_id)
            group = self._track(Group(group_id, request["protocol_type"], self._initial_delay_ms))
        if member_id and group.is_fenced(member_id, instance_id):
            return _error(FENCED_INSTANCE_ID, member_id)
        if not group.supports(request["protocol_type"], protocols):
            return _error(INCONSISTENT_GROUP_PROTOCOL, member_id)
        if not group.members:
            group.protocol_type = request["protocol_type"]
        member = Member(
            member_id=member_id,
            group_instance_id=instance_id,
            client_id=client_id,
            client_host=host,
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=request.get("rebalance_timeout_ms", -1),
            protocols=protocols,
        )
        if member.rebalance_timeout_ms < 0:  # JoinGroup v0 has no rebalance timeout
            member.rebalance_timeout_ms = session_ms
        if not member_id:
            return await self._join_unknown(group, member, request, now)
        if member_id in group.pending_members:
            del group.pending_members[member_id]
            return await self._add_and_rebalance(group, member, now)
        if member_id not in group.members:
            return _error(UNKNOWN_MEMBER_ID, member_id)
        return await self._join_known(group, member, now)

    async def _join_unknown(
        self, group: Group, member: Member, request: dict[str, Any], now: float
    ) -> dict[str, Any]:
        member.member_id = f"{member.client_id}-{uuid.uuid4()}"
        if member.group_instance_id in group.static_members:
            return await self._replace_static(group, member, now)
        if request.get("require_known_member_id") and not member.group_instance_id:
            # KIP-394: hand out the id first, so a client that times out and retries
            # rejoins as the same member instead of leaving a ghost in the group.
            group.pending_members[member.member_id] = now + member.session_timeout_ms / 1000
            return _error(MEMBER_ID_REQUIRED, member.member_id)
        return await self._add_and_rebalance(group, member, now)

    async def _add_and_rebalance(self, group: Group, member: Member, now: float) -> dict[str, Any]:
        group.add(member, now)
        return await self._rejoin(group, member, now)

    async def _join_known(self, group: Group, joining: Member, now: float) -> dict[str, Any]:
        member = group.members[joining.member_id]
        changed = member.protocols != joining.protocols
        member.protocols = joining.protocols
        member.session_timeout_ms = joining.session_timeout_ms
        member.rebalance_timeout_ms = joining.rebalance_timeout_ms
        member.keep_alive_until(now)
        unchanged_follower = not changed and member.member_id != group.leader
        if group.state is GroupState.STABLE and unchanged_follower:
            return group.join_result(member, with_members=False)
        if group.state is GroupState.COMPLETING_REBALANCE and not changed:
            return group.join_result(member, with_members=True)
        return await self._rejoin(group, member, now)

    async def _rejoin(self, group: Group, member: Member, now: float) -> dict[str, Any]:
        # A join still pending from an earlier connection is superseded by this one.
        resolve(member.join_waiter, {"error_code": REBALANCE_IN_PROGRESS})
        waiter = member.join_waiter = asyncio.get_running_loop().create_future()
        if group.state is GroupState.PREPARING_REBALANCE:
            group.try_complete_join(now)
        else:
            group.prepare_rebalance(now)
        return await waiter

    async def _replace_static(self, group: Group, member: Member, now: float) -> dict[str, Any]:
        """KIP-345: a known group.instance.id rejoining takes over its old member's place
        (and assignment). In a stable group with the same subscription nothing is
        rebalanced: the member gets the current generation back and syncs to fetch
        its assignment. The old leader id is returned so that a rejoining leader does
        not think it must compute (and fail to broadcast) a new assignment."""
        old_id = group.static_members[member.group_instance_id or ""]
        old = group.members.pop(old_id)
        fenced = {"error_code": FENCED_INSTANCE_ID, "member_id": old_id}
        resolve(old.join_waiter, fenced)
        resolve(old.sync_waiter, fenced)
        member.assignment = old.assignment
        old_leader = group.leader
        if group.leader == old_id:
            group.leader = member.member_id
        group.add(member, now)
        if group.state is GroupState.STABLE and member.protocols == old.protocols:
            group.stored()  # Kafka records the new member id in the group's metadata
            return group.join_result(member, with_members=False, leader=old_leader)
        return await self._rejoin(group, member, now)

    async def sync(self, request: dict[str, Any]) -> dict[str, Any]:
        group, member, error = self._check_member(request)
        if error:
            return {"error_code": error}
        assert group and member
        member.keep_alive_until(_now())
        if group.state is GroupState.PREPARING_REBALANCE:
            return {"error_code": REBALANCE_IN_PROGRESS}
        if group.state is GroupState.STABLE:
            return {"error_code": NONE, "assignment": member.assignment}
        waiter = member.sync_waiter = asyncio.get_running_loop().create_future()
        if member.member_id == group.leader:
            assignments = {a["member_id"]: a["assignment"] for a in request["assignments"]}
            group.complete_sync(assignments)
        return await waiter

    def heartbeat(self, request: dict[str, Any]) -> int:
        group, member, error = self._check_member(request)
        if error:
            return error
        assert group and member
        member.keep_alive_until(_now())
        if group.state is GroupState.PREPARING_REBALANCE:
            return REBALANCE_IN_PROGRESS
        return NONE

    def leave(self, group_id: str, member_id: str) -> int:
        group = self.groups.get(group_id)
        if group is None or member_id not in group.members:
            return UNKNOWN_MEMBER_ID
        group.remove(member_id, _now())
        return NONE

    def check_commit(self, group_id: str, generation: int, member_id: str) -> int:
        """Kafka accepts commits from the current generation while a rebalance is being
        prepared (eager consumers commit before giving partitions up), refuses them
        while the new assignment is being synced, and lets groups that do not use
        the coordinator's membership (generation -1) commit freely while empty."""
        group = self.groups.get(group_id)
        if generation < 0 and not member_id and (group is None or not group.members):
            return NONE
        if group is None or member_id not in group.members:
            return UNKNOWN_MEMBER_ID if group else ILLEGAL_GENERATION
        if generation != group.generation:
            return ILLEGAL_GENERATION
        if group.state is GroupState.COMPLETING_REBALANCE:
            return REBALANCE_IN_PROGRESS
        group.members[member_id].keep_alive_until(_now())
        return NONE

    def _check_member(self, request: dict[str, Any]) -> tuple[Group | None, Member | None, int]:
        group = self.groups.get(request["group_id"])
        member_id = request["member_id"]
        if group is None:
            return None, None, UNKNOWN_MEMBER_ID
        if group.is_fenced(member_id, request.get("group_instance_id")):
            return None, None, FENCED_INSTANCE_ID
        member = group.members.get(member_id)
        if member is None or group.state is GroupState.EMPTY:
            return None, None, UNKNOWN_MEMBER_ID
        if request["generation_id"] != group.generation:
            return None, None, ILLEGAL_GENERATION
        return group, member, NONE

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(_TICK_SECONDS)
            self.expire(_now())

    def expire(self, now: float) -> None:
        """Session timeouts: a member that neither heartbeats nor waits on a join/sync
        within its session timeout is presumed dead and its partitions reassigned."""
        for group in list(self.groups.values()):
            for member_id, expiry in list(group.pending_members.items()):
                if now >= expiry:
                    del group.pending_members[member_id]
                    group.try_complete_join(now)
            for member in list(group.members.values()):
                waiting = member.join_waiter is not None or member.sync_waiter is not None
                if not waiting and now >= member.deadline and member.member_id in group.members:
                    group.remove(member.member_id, now)
            if group.state is GroupState.PREPARING_REBALANCE and now >= group.rebalance_deadline:
                group.on_rebalance_timeout(now)


def _now() -> float:
    return asyncio.get_running_loop().time()


def _error(code: int, member_id: str) -> dict[str, Any]:
    return {"error_code": code, "member_id": member_id, "generation_id": -1}
