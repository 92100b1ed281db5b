"""Every process refuses a request body over its limit (ServiceOptions.max_body_bytes, 1 MiB
by default) with a 413 envelope: by Content-Length before reading a byte, and while reading a
body that does not say its length, without reading past the limit. A 102 MB JSON body to the
monolith's POST /api/orders was parsed whole before a 422 (RSS 134 MB -> 1,013 MB)."""

from __future__ import annotations

import json
import resource
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from infra.settings import Settings
from libs.response import is_valid_envelope
from monolith.entrypoints.app import create_app as create_monolith
from tests.support.brokers import NO_BROKER
from tests.support.servers import serving

BIG = 102 * 1024 * 1024


@pytest.fixture(scope="module")
def monolith(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("body"), kafka_bootstrap=NO_BROKER)
    with serving(create_monolith(settings)) as url:
        yield url


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], dict]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


def open_post(url: str, headers: str) -> socket.socket:
    where = urlsplit(url)
    sock = socket.create_connection((where.hostname, where.port), timeout=20)
    sock.sendall(
        f"POST /api/orders HTTP/1.1\r\nHost: {where.netloc}\r\n"
        f"Content-Type: application/json\r\n{headers}\r\n".encode()
    )
    return sock


def test_a_declared_length_over_the_limit_is_refused_before_any_byte_is_read(monolith: str):
    with open_post(monolith, f"Content-Length: {BIG}\r\n") as sock:
        status, headers, body = read_answer(sock)  # nothing of the body was sent
    assert status == 413
    assert headers["x-served-by"] == "monolith" and headers.get("x-request-id")
    assert is_valid_envelope(body) and body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert body["error"]["details"] == [{"limit_bytes": 1048576, "content_length": BIG}]


def test_a_chunked_body_is_cut_at_the_limit_without_being_read_whole(monolith: str):
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; the server's too
    chunk = b'{"items": [' + b" " * (1024 * 1024 - 11)
    sent = 0
    with open_post(monolith, "Transfer-Encoding: chunked\r\n") as sock:
        try:
            while sent < BIG:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                chunk = b" " * len(chunk)
        except OSError:
            pass  # the server stopped reading and closed: what it should do
        status, _, body = read_answer(sock)
    assert status == 413, body
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert sent < BIG  # the sender was cut off long before the 102 MB were through
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 50, grown_mb


def test_a_body_within_the_limit_is_answered_as_before(monolith: str):
    answer = httpx.post(f"{monolith}/api/orders", json={"items": []}, timeout=10)
    assert answer.status_code in (401, 422)  # no token: refused on its merits, not its size
