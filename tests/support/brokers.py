"""The two brokers the broker suite runs against, each a real process on a loopback port:
the project's dev broker (`shop broker`) and Apache Kafka 4.x (`infra.kafka`, from Maven
Central's jars). Both get the same short group timings, so one test body serves both."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.kafka.probe import kafka_answers
from infra.kafka.runtime import KafkaNode, KafkaUnavailable, check_java, default_home, fetch
from infra.settings import Settings
from infra.supervisor import free_port

KINDS = ("devbroker", "apache-kafka")
# group.min.session.timeout.ms on both: the tests' consumers use 1.5 s sessions, so that a
# member that is gone is noticed in a fraction of the time a real deployment takes.
GROUP_MIN_SESSION_TIMEOUT_MS = 100
PARTITIONS = 3
# socket.request.max.bytes on both (Kafka's default is 100 MiB): low enough that a test can send
# an oversized request cheaply, well above message.max.bytes (~1 MB) so normal batches fit.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


@dataclass
class DevBrokerProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    kind: str = "devbroker"
    process: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.data_dir.parent / "devbroker.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "infra", "broker", "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--default-partitions", str(PARTITIONS),
                "--group-min-session-timeout-ms", str(GROUP_MIN_SESSION_TIMEOUT_MS),
                "--max-request-bytes", str(MAX_REQUEST_BYTES),
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not kafka_answers("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the dev broker did not start (log in {log.name})")
            time.sleep(0.05)

    def stop(self) -> int | None:
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process = None
        return code


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
        check_java()
        settings = Settings()
        lib = fetch(settings.kafka_home or default_home(), settings.kafka_version)
        node = KafkaNode(
            lib,
            workdir / "data",
            port=free_port(),
            controller_port=free_port(),
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
