"""A client of the member service's gRPC API for other services. Every call carries an
explicit deadline: a caller that waits for ever turns one slow member lookup into a stalled
order. Every call waits for the channel to be ready within that deadline (`wait_for_ready`):
a member service restarting is a short wait for its new process, not an UNAVAILABLE."""

from __future__ import annotations

import grpc

from protos.shop.member.v1 import member_pb2, member_pb2_grpc

# Keepalive pings notice a dead peer between calls; reconnect backoff stays short so a
# restarted member service is found again within a second.
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
)


class BlockingMemberClient:
    """For callers that run in threads, as the monolith's handlers do. One channel, shared by
    every thread, until `close()`."""

    def __init__(self, target: str, *, timeout: float) -> None:
        self.target, self.timeout = target, timeout
        self._channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._stub = member_pb2_grpc.MemberServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def get_member(self, member_id: int) -> member_pb2.Member:
        request = member_pb2.GetMemberRequest(member_id=member_id)
        return self._stub.GetMember(request, timeout=self.timeout, wait_for_ready=True)

    def spend_points(
        self,
        member_id: int,
        amount: int,
        key: str,
        reason: str = "spend",
        payment_id: int | None = None,
        *,
        timeout: float | None = None,
    ) -> member_pb2.SpendPointsResponse:
        """Idempotent on `key`: safe to repeat after a lost answer."""
        request = member_pb2.SpendPointsRequest(
            member_id=member_id, amount=amount, key=key, reason=reason, payment_id=payment_id or 0
        )
        return self._stub.SpendPoints(request, timeout=timeout or self.timeout, wait_for_ready=True)

    def cancel_spend(
        self, member_id: int, key: str, *, timeout: float | None = None
    ) -> member_pb2.CancelSpendResponse:
        """Idempotent on `key`; also safe before the spend arrived (the spend then refuses)."""
        request = member_pb2.CancelSpendRequest(member_id=member_id, key=key)
        return self._stub.CancelSpend(request, timeout=timeout or self.timeout, wait_for_ready=True)
