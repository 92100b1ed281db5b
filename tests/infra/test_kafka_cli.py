"""`shop kafka`: a real Apache Kafka from the cached jars, ready line, clients served, a clean
stop on SIGTERM; and a clear word, not a traceback, when Java is missing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra.kafka.probe import kafka_answers
from infra.kafka.runtime import KafkaUnavailable, installed_jars
from infra.settings import Settings
from infra.supervisor import free_ports
from tests.support.kafka_clients import consume

pytestmark = pytest.mark.slow  # whole systems or a browser: not in `make test-fast`

SHOP = str(Path(sys.executable).parent / "shop")


@pytest.fixture(scope="module")
def kafka_jars() -> Path:
    settings = Settings()
    try:
        return installed_jars(settings.kafka_home, settings.kafka_version)
    except KafkaUnavailable as exc:
        if os.environ.get("SHOP_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail(f"Apache Kafka cannot run here: {exc}")
        pytest.skip(f"Apache Kafka cannot run here: {exc}")


async def test_shop_kafka_serves_clients_and_stops_cleanly_on_sigterm(kafka_jars, tmp_path):
    port, controller_port = free_ports(2)
    process = await asyncio.create_subprocess_exec(
        SHOP, "kafka", "--port", str(port), "--controller-port", str(controller_port),
        "--data-dir", str(tmp_path / "kafka"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    seen = b""
    try:
        async with asyncio.timeout(90):
            while b"ready on" not in (line := await process.stdout.readline()):
                assert line, f"shop kafka exited before it was ready:\n{seen.decode()}"
                seen += line
        assert f"127.0.0.1:{port}".encode() in line and b"Apache Kafka 4." in line
        bootstrap = f"127.0.0.1:{port}"
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait("kafka-cli", b"hello", key=b"member-1")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            "kafka-cli", bootstrap_servers=bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            [message] = await consume(consumer, 1, within=30)
        finally:
            await consumer.stop()
        assert (message.key, message.value) == (b"member-1", b"hello")
    finally:
        process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stdout.read(), 60)
        code = await process.wait()
    assert code == 0, rest.decode(errors="replace")
    assert b"Apache Kafka stopped cleanly" in rest
    assert not kafka_answers("127.0.0.1", port)


def test_shop_kafka_says_what_is_missing_without_java(tmp_path):
    done = subprocess.run(
        [SHOP, "kafka", "--data-dir", str(tmp_path)],
        env={**os.environ, "JAVA_HOME": str(tmp_path / "no-java-here")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Java 17+ is needed" in done.stderr and "JAVA_HOME" in done.stderr
    assert "Traceback" not in done.stderr
