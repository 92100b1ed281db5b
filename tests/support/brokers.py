"""The two brokers the broker suite runs against, each a real process on a loopback port:
the project's dev broker (`shop broker`) and Apache Kafka 4.x (`infra.kafka`, from Maven
Central's jars). Both get the same short group timings, so one test body serves both."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from infra.kafka.runtime import KafkaNode, KafkaUnavailable, installed_jars
from infra.settings import Settings
from infra.supervisor import BROKER, Supervisor, free_port, free_ports

KINDS = ("devbroker", "apache-kafka")
# For a process under test that needs no broker: its relay and consumers find nothing there
# (the discard port) and retry quietly, instead of reaching a dev broker `shop up` runs on
# the default port of the same machine.
NO_BROKER = "127.0.0.1:9"
# group.min.session.timeout.ms on both: the tests' consumers use 1.5 s sessions, so that a
# member that is gone is noticed in a fraction of the time a real deployment takes.
GROUP_MIN_SESSION_TIMEOUT_MS = 100
PARTITIONS = 3
# socket.request.max.bytes on both (Kafka's default is 100 MiB): low enough that a test can send
# an oversized request cheaply, well above message.max.bytes (~1 MB) so normal batches fit.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


@dataclass
class DevBrokerProcess:
    """`shop broker` under the supervisor `shop up` uses, on a port kept across restarts."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    kind: str = "devbroker"

    def __post_init__(self) -> None:
        self._supervisor = Supervisor({}, self.data_dir.parent / "logs")

    def start(self) -> None:
        self._supervisor.start_broker(
            self.port, self.data_dir,
            "--default-partitions", str(PARTITIONS),
            "--group-min-session-timeout-ms", str(GROUP_MIN_SESSION_TIMEOUT_MS),
            "--max-request-bytes", str(MAX_REQUEST_BYTES),
        )  # fmt: skip
        self._supervisor.wait_ready()

    def stop(self) -> int | None:
        return self._supervisor.stop().get(BROKER, 0)


@dataclass
class ApacheKafkaProcess:
    node: KafkaNode
    kind: str = "apache-kafka"

    @property
    def port(self) -> int:
        return self.node.port

    def start(self) -> None:
        self.node.start()
        self.node.wait_ready(timeout=90)

    def stop(self) -> int | None:
        return self.node.stop()


@dataclass
class BrokerUnderTest:
    """What a test of the broker suite sees: a bootstrap address, and a restart on the same
    port and data (a broker crash or deploy, as far as a client can tell)."""

    server: DevBrokerProcess | ApacheKafkaProcess

    @property
    def kind(self) -> str:
        return self.server.kind

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    async def restart(self) -> None:
        await asyncio.to_thread(self._restart)

    def _restart(self) -> None:
        self.server.stop()
        self.server.start()


def start_broker(kind: str, workdir: Path) -> BrokerUnderTest:
    """Start one broker of `kind` in `workdir`; KafkaUnavailable says what this machine lacks."""
    if kind == "devbroker":
        server: DevBrokerProcess | ApacheKafkaProcess = DevBrokerProcess(workdir / "data")
    else:
        settings = Settings()
        lib = installed_jars(settings.kafka_home, settings.kafka_version)
        port, controller_port = free_ports(2)
        node = KafkaNode(
            lib,
            workdir / "data",
            port=port,
            controller_port=controller_port,
            partitions=PARTITIONS,
            group_min_session_timeout_ms=GROUP_MIN_SESSION_TIMEOUT_MS,
            # Fewer partitions of __consumer_offsets than Kafka's 50: the first group
            # coordinator lookup then takes a fraction of a second instead of several.
            offsets_partitions=5,
            max_request_bytes=MAX_REQUEST_BYTES,
        )
        server = ApacheKafkaProcess(node)
    server.start()
    return BrokerUnderTest(server)


__all__ = ["KINDS", "MAX_REQUEST_BYTES", "BrokerUnderTest", "KafkaUnavailable", "start_broker"]
