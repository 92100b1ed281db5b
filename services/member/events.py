"""The member events (`shop.members`, keyed by the member's id; docs/contracts.md), built the
same way by whoever changes a member: the monolith until the members' dual write, the member
service from its shared-DB stage on, and both in between (each announces its own changes).

A member's sequence is its row's `version`, which every change moves by one in SQL
(`version = version + 1`) in the change's own transaction: both writers of the shared-DB stage
queue on the row's lock, so their events number 1, 2, 3 between them, and in dual write both
DBs' rows move the same. The events of one member may sit in two outboxes (the legacy DB's
until dual write, the member DB's after), whose relays keep no order between them; the
sequence says which is newer.

Every event carries the member's whole public state after the change, so a consumer that
applies only the newest event it saw (a read model's "my page") knows all the earlier ones
said; a points change also says how much moved and why."""

from __future__ import annotations

from typing import Any

from libs.events.envelope import Event

TOPIC = "shop.members"
AGGREGATE = "member"
REGISTERED, PROFILE_CHANGED, POINTS_CHANGED = (
    "MemberRegistered", "MemberProfileChanged", "MemberPointsChanged",
)  # fmt: skip
# The member's public state after the change, as each event's data carries it (with
# `member_id`): what GET /api/members/me answers, and the version it is at.
STATE = ("email", "name", "phone", "points", "version")
# What an event's builder needs of the row: its id and its state.
COLUMNS = ("id", *STATE)


def member_registered(member: dict[str, Any]) -> Event:
    """`member`: the row after the signup (version 1)."""
    return _event(REGISTERED, member, {})


def profile_changed(member: dict[str, Any]) -> Event:
    return _event(PROFILE_CHANGED, member, {})


def points_changed(member: dict[str, Any], delta: int, reason: str) -> Event:
    """`delta`: the points the balance moved by (negative for a debit); `reason`: the
    ledger line's (earn, spend, refund, take-back, cancel)."""
    return _event(POINTS_CHANGED, member, {"delta": delta, "reason": reason})


def _event(kind: str, member: dict[str, Any], extra: dict[str, Any]) -> Event:
    data = {"member_id": member["id"]} | {name: member[name] for name in STATE} | extra
    return Event(kind, AGGREGATE, str(member["id"]), member["version"], data)
