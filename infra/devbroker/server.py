"""The broker: storage, coordinators and the TCP server wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from infra.devbroker.config import BrokerConfig
from infra.devbroker.connection import Connection
from infra.devbroker.context import RequestContext
from infra.devbroker.groups import GroupCoordinator
from infra.devbroker.groups.store import GroupStore
from infra.devbroker.offsets import OffsetStore
from infra.devbroker.producers import ProducerStates
from infra.devbroker.topics import TopicStore

log = logging.getLogger(__name__)


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.port = config.port
        self.stopping = False
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.topics = TopicStore(config.data_dir)
        self.producers = ProducerStates(config.data_dir)
        self._replay_producer_state()
        self.offsets = OffsetStore(config.data_dir)
        self.group_store = GroupStore(config.data_dir)
        self.groups = GroupCoordinator(
            config.group_min_session_timeout_ms,
            config.group_max_session_timeout_ms,
            config.group_initial_rebalance_delay_ms,
            self.group_store,
        )
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._stopped: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stopped = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(
            self._accept, self.config.host, self.config.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.groups.start()
        self._flusher = asyncio.create_task(self._flush_forever(), name="broker-flush")
        log.info("dev broker listening on %s:%d", self.config.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, answer the long-polls in flight, close connections, then
        fsync logs and offsets: a clean stop loses nothing."""
        if self.stopping:
            return
        self.stopping = True
        assert self._server and self._stopped
        self._server.close()
        self._stopped.set_result(None)
        await asyncio.sleep(0)  # let woken fetches answer before their sockets close
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        await self.groups.stop()
        if self._flusher:
            self._flusher.cancel()
        self.topics.close()
        self.offsets.close()
        self.group_store.close()

    def stopped_waiter(self) -> asyncio.Future[None]:
        assert self._stopped is not None
        return self._stopped

    def _context(self, api_version: int, client_id: str, host: str) -> RequestContext:
        return RequestContext(self, api_version, client_id, host)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.stopping:
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            connection = Connection(reader, writer, self.config.max_request_bytes, self._context)
            with contextlib.suppress(asyncio.CancelledError):
                await connection.serve()
        finally:
            self._connections.discard(task)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval_ms / 1000)
            self.topics.flush()
            self.offsets.flush()

    def _replay_producer_state(self) -> None:
        for topic, logs in self.topics.partitions.items():
            for partition, partition_log in enumerate(logs):
                for header in partition_log.loaded_headers:
                    self.producers.record(topic, partition, header, header.base_offset)
                partition_log.loaded_headers.clear()
