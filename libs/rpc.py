"""A gRPC server the way every service runs one: its servicers registered, listening on one
address, started; the caller stops it with its grace at shutdown."""

from __future__ import annotations

from collections.abc import Callable

import grpc


async def start_grpc_server(
    register: Callable[[grpc.aio.Server], None], host: str, port: int
) -> grpc.aio.Server:
    server = grpc.aio.server()
    register(server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"gRPC cannot listen on {host}:{port}")
    await server.start()
    return server
