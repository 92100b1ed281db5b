"""Broker settings. A plain dataclass: the CLI maps options and SHOP_ variables to it."""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class BrokerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    # What Metadata and FindCoordinator tell clients to connect to; a broker bound
    # to 0.0.0.0 must still hand out an address clients can reach.
    advertised_host: str | None = None
    node_id: int = 0
    cluster_id: str = "strangler-shop-dev"
    default_partitions: int = 3
    auto_create_topics: bool = True
    # socket.request.max.bytes in Kafka (100 MiB there); larger frames are refused.
    max_request_bytes: int = 100 * 1024 * 1024
    # message.max.bytes: the largest record batch a topic accepts (MESSAGE_TOO_LARGE).
    max_message_bytes: int = 1_048_588
    # Kafka's group.min/max.session.timeout.ms: a member asking for a session timeout
    # outside these bounds gets INVALID_SESSION_TIMEOUT.
    group_min_session_timeout_ms: int = 6_000
    group_max_session_timeout_ms: int = 1_800_000
    # group.initial.rebalance.delay.ms: how long the first rebalance of an empty group
    # waits for more members. Kafka's default is 3 s; 0 shows every join as it happens.
    group_initial_rebalance_delay_ms: int = 0
    flush_interval_ms: int = 1_000

    @property
    def advertised(self) -> str:
        if self.advertised_host:
            return self.advertised_host
        return "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
