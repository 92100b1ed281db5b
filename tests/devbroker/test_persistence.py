"""The dev broker's own data dir: how it recovers a torn write, and the `shop broker` command.
That committed offsets survive restarts, on either broker, is in
tests/brokers/test_offsets_across_restarts.py."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra.devbroker import Broker
from infra.supervisor import free_port
from tests.support.kafka_clients import CLIENT_TIMINGS, consume

# The console script installed next to this interpreter: the command users run.
SHOP = str(Path(sys.executable).parent / "shop")


async def test_a_torn_write_at_the_end_of_a_log_is_cut_off_at_start_up(broker, producer):
    for number in range(3):
        await producer.send_and_wait("torn", b"%d" % number, partition=0)
    await producer.stop()
    await broker.stop()
    log_file = broker.config.data_dir / "topics" / "torn" / "0.log"
    intact = log_file.stat().st_size
    with log_file.open("ab") as out:
        out.write(b"\x00" * 30)  # half a batch header: the broker died mid-append
    restarted = Broker(broker.config)
    await restarted.start()
    try:
        assert restarted.topics.get("torn", 0).end_offset == 3
        assert log_file.stat().st_size == intact
    finally:
        await restarted.stop()


async def start_shop_broker(port: int, data_dir: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "SHOP_BROKER_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        SHOP,
        "broker",
        "--data-dir",
        str(data_dir),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 20)
    assert b"dev broker ready" in line, line
    return process


async def stop_shop_broker(process: asyncio.subprocess.Process) -> tuple[int, bytes]:
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None
    rest = await asyncio.wait_for(process.stdout.read(), 20)
    return await process.wait(), rest


async def test_the_shop_broker_command_serves_clients_and_stops_cleanly_on_sigterm(tmp_path):
    port, data_dir = free_port(), tmp_path / "shop-broker"
    process = await start_shop_broker(port, data_dir)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{port}")
        await producer.start()
        try:
            for number in range(10):
                await producer.send_and_wait("payments", b"%d" % number, partition=0)
        finally:
            await producer.stop()
    finally:
        code, output = await stop_shop_broker(process)
    assert code == 0
    assert b"flushed" in output

    process = await start_shop_broker(port, data_dir)
    try:
        consumer = AIOKafkaConsumer(
            "payments",
            bootstrap_servers=f"127.0.0.1:{port}",
            group_id="payments-audit",
            auto_offset_reset="earliest",
            # The command keeps Kafka's group.min.session.timeout.ms of 6 s.
            **{**CLIENT_TIMINGS, "session_timeout_ms": 6000},
        )
        await consumer.start()
        try:
            survived = await consume(consumer, 10, within=20)
        finally:
            await consumer.stop()
    finally:
        await stop_shop_broker(process)
    assert [int(m.value) for m in survived] == list(range(10))
