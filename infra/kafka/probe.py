"""Is a Kafka-protocol broker answering? One ApiVersions request over a plain socket, so the
check needs no client library and works for the dev broker and Apache Kafka alike."""

from __future__ import annotations

import socket
import struct

_API_VERSIONS = 18
_CLIENT_ID = b"shop-probe"
# Request header v1 (api key, version 0, correlation id, client id), empty ApiVersions v0 body.
_HEADER = struct.pack(">hhih", _API_VERSIONS, 0, 1, len(_CLIENT_ID)) + _CLIENT_ID
_REQUEST = struct.pack(">i", len(_HEADER)) + _HEADER


def kafka_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when the broker at host:port answers ApiVersions without an error code."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_REQUEST)
            head = _read(sock, 10)  # size, correlation id, error code
    except OSError:
        return False
    _size, correlation_id, error_code = struct.unpack(">iih", head)
    return correlation_id == 1 and error_code == 0


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed by the broker")
        data += chunk
    return data
