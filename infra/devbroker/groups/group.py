"""One consumer group's state machine, as in Kafka's classic group coordinator.

  Empty --join--> PreparingRebalance --all joined or rebalance timeout-->
  CompletingRebalance --leader's SyncGroup--> Stable --join/leave/expiry--> Preparing...

Eager protocol: once a rebalance starts every member must stop, give up its
partitions and rejoin; nobody consumes until the leader's assignment is handed out.
That pause is what a rebalance costs, and what static membership avoids.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import enum
from collections.abc import Callable
from typing import Any

# Kafka error codes used by the coordinator.
NONE = 0
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"


@dataclasses.dataclass
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: list[tuple[str, bytes]]
    deadline: float = 0.0
    assignment: bytes = b""
    join_waiter: asyncio.Future[dict[str, Any]] | None = None
    sync_waiter: asyncio.Future[dict[str, Any]] | None = None

    def metadata_for(self, protocol: str) -> bytes:
        return dict(self.protocols).get(protocol, b"")

    def keep_alive_until(self, now: float) -> None:
        self.deadline = now + self.session_timeout_ms / 1000


def resolve(waiter: asyncio.Future[dict[str, Any]] | None, result: dict[str, Any]) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(result)


class Group:
    def __init__(self, group_id: str, protocol_type: str, initial_delay_ms: int) -> None:
        self.group_id = group_id
        self.protocol_type = protocol_type
        self.state = GroupState.EMPTY
        self.generation = 0
        self.protocol_name: str | None = None
        self.leader: str | None = None
        self.members: dict[str, Member] = {}  # insertion order = join order
        self.static_members: dict[str, str] = {}  # group.instance.id -> current member id
        self.pending_members: dict[str, float] = {}  # MEMBER_ID_REQUIRED ids -> expiry
        self.rebalance_deadline = 0.0
        self.initial_delay_ms = initial_delay_ms
        self.delaying_initial_join = False
        self.rebalances = 0
        # Called when Kafka would write the group's metadata record: a rebalance completed
        # (the leader's assignment is in) or the group became empty.
        self.on_stored: Callable[[Group], None] | None = None

    def snapshot(self) -> dict[str, Any]:
        """The group as a restarted broker needs it: who is in which generation with
        which assignment."""
        members = [
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "session_timeout_ms": m.session_timeout_ms,
                "rebalance_timeout_ms": m.rebalance_timeout_ms,
                "protocols": [[name, _b64(meta)] for name, meta in m.protocols],
                "assignment": _b64(m.assignment),
            }
            for m in self.members.values()
        ]
        return {
            "group_id": self.group_id,
            "protocol_type": self.protocol_type,
            "generation": self.generation,
            "protocol_name": self.protocol_name,
            "leader": self.leader,
            "members": members,
        }

    @classmethod
    def restore(cls, record: dict[str, Any], initial_delay_ms: int, now: float) -> Group:
        """A stored group comes back Stable (Empty without members); as in Kafka, every
        member gets a fresh session timeout from now to heartbeat again."""
        group = cls(record["group_id"], record["protocol_type"], initial_delay_ms)
        group.generation = record["generation"]
        for entry in record["members"]:
            member = Member(
                member_id=entry["member_id"],
                group_instance_id=entry["group_instance_id"],
                client_id=entry["client_id"],
                client_host=entry["client_host"],
                session_timeout_ms=entry["session_timeout_ms"],
                rebalance_timeout_ms=entry["rebalance_timeout_ms"],
                protocols=[(name, _unb64(meta)) for name, meta in entry["protocols"]],
                assignment=_unb64(entry["assignment"]),
            )
            group.add(member, now)
        if group.members:
            group.state = GroupState.STABLE
            group.protocol_name = record["protocol_name"]
            group.leader = record["leader"]
        return group

    def stored(self) -> None:
        if self.on_stored is not None:
            self.on_stored(self)

    def is_fenced(self, member_id: str, instance_id: str | None) -> bool:
        """KIP-345: once a static instance rejoined under a new member id, requests
        still carrying its old id come from a zombie and must be fenced off."""
        if not instance_id or instance_id not in self.static_members:
            return False
        return self.static_members[instance_id] != member_id

    def supports(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        if not protocols or not protocol_type:
            return False
        if not self.members:
            return True
        if protocol_type != self.protocol_type:
            return False
        names = {name for name, _ in protocols}
        return all(names & {name for name, _ in m.protocols} for m in self.members.values())

    def add(self, member: Member, now: float) -> None:
        self.members[member.member_id] = member
        if member.group_instance_id:
            self.static_members[member.group_instance_id] = member.member_id
        member.keep_alive_until(now)

    def remove(self, member_id: str, now: float) -> None:
        member = self.members.pop(member_id)
        if member.group_instance_id:
            self.static_members.pop(member.group_instance_id, None)
        error = {"error_code": UNKNOWN_MEMBER_ID, "member_id": member_id}
        resolve(member.join_waiter, error)
        resolve(member.sync_waiter, error)
        if self.leader == member_id:
            self.leader = None
        if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self.prepare_rebalance(now)
        else:
            self.try_complete_join(now)

    def prepare_rebalance(self, now: float) -> None:
        if self.state is GroupState.COMPLETING_REBALANCE:
            # The assignment being synced is void: members must rejoin first.
            for member in self.members.values():
                resolve(member.sync_waiter, {"error_code": REBALANCE_IN_PROGRESS})
                member.sync_waiter = None
        self.delaying_initial_join = self.state is GroupState.EMPTY and self.initial_delay_ms > 0
        if self.delaying_initial_join:
            self.rebalance_deadline = now + self.initial_delay_ms / 1000
        else:
            timeout = max((m.rebalance_timeout_ms for m in self.members.values()), default=0)
            self.rebalance_deadline = now + timeout / 1000
        self.state = GroupState.PREPARING_REBALANCE
        self.rebalances += 1
        self.try_complete_join(now)

    def try_complete_join(self, now: float) -> None:
        if self.state is not GroupState.PREPARING_REBALANCE:
            return
        all_joined = all(m.join_waiter is not None for m in self.members.values())
        delaying = self.delaying_initial_join and now < self.rebalance_deadline
        if all_joined and not self.pending_members and not delaying:
            self.complete_join(now)

    def on_rebalance_timeout(self, now: float) -> None:
        """Members that did not rejoin within the rebalance timeout are dropped, static
        ones included, and the rebalance completes with whoever is left."""
        for member_id in [m.member_id for m in self.members.values() if m.join_waiter is None]:
            member = self.members.pop(member_id)
            if member.group_instance_id:
                self.static_members.pop(member.group_instance_id, None)
            if self.leader == member_id:
                self.leader = None
        self.pending_members.clear()
        self.complete_join(now)

    def complete_join(self, now: float) -> None:
        self.generation += 1
        if not self.members:
            self.state = GroupState.EMPTY
            self.protocol_name = None
            self.leader = None
            self.stored()
            return
        self.protocol_name = self._select_protocol()
        if self.leader not in self.members:
            self.leader = next(iter(self.members))
        self.state = GroupState.COMPLETING_REBALANCE
        for member in self.members.values():
            member.assignment = b""
            member.keep_alive_until(now)
            resolve(member.join_waiter, self.join_result(member, with_members=True))
            member.join_waiter = None

    def complete_sync(self, assignments: dict[str, bytes]) -> None:
        self.state = GroupState.STABLE
        for member in self.members.values():
            member.assignment = assignments.get(member.member_id, b"")
        self.stored()
        for member in self.members.values():
            resolve(member.sync_waiter, {"error_code": NONE, "assignment": member.assignment})
            member.sync_waiter = None

    def join_result(
        self, member: Member, with_members: bool, leader: str | None = None
    ) -> dict[str, Any]:
        leader = leader or self.leader
        members = []
        if with_members and member.member_id == leader:
            members = [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "metadata": m.metadata_for(self.protocol_name or ""),
                }
                for m in self.members.values()
            ]
        return {
            "error_code": NONE,
            "generation_id": self.generation,
            "protocol_name": self.protocol_name,
            "leader": leader,
            "member_id": member.member_id,
            "members": members,
        }

    def _select_protocol(self) -> str:
        """Every member votes for its most preferred protocol that all members support."""
        candidates = set.intersection(
            *({name for name, _ in m.protocols} for m in self.members.values())
        )
        votes: dict[str, int] = {}
        for member in self.members.values():
            choice = next(name for name, _ in member.protocols if name in candidates)
            votes[choice] = votes.get(choice, 0) + 1
        return max(votes, key=lambda name: votes[name])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)
