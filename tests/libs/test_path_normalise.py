"""normalise_path: the one form of a path the gateway matches and forwards (RFC 3986 5.2.4
dot-segment removal after decoding unreserved escapes; ambiguous paths refused)."""

from __future__ import annotations

import pytest

from libs.routing.table import AmbiguousPath, normalise_path


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (b"/", "/"),
        (b"/api/products/%2e%2e/%2E%2E/admin/features", "/admin/features"),
        (b"/api/products/%2e%2e/orders", "/api/orders"),
        (b"/api/members/./1/.", "/api/members/1/"),
        (b"/a/b/..", "/a/"),
        (b"/../../a", "/a"),
        (b"/%6Dembers/%7ea%2D1", "/members/~a-1"),
        (b"/a%20b%3fc", "/a%20b%3Fc"),
        (b"/caf\xc3\xa9", "/caf%C3%A9"),
        (b"/a;b=c:d@e", "/a;b=c:d@e"),
        (b"/a/%252e%252e/b", "/a/%252e%252e/b"),
    ],
)
def test_a_path_has_one_normal_form(raw: bytes, normal: str):
    assert normalise_path(raw) == normal
    assert normalise_path(normal.encode()) == normal  # normalising twice changes nothing


@pytest.mark.parametrize(
    "raw",
    [
        b"/a%2fb",
        b"/a%2F..",
        b"/a%5cb",
        b"/a\\b",
        b"//a",
        b"/a//b",
        b"/%00",
        b"/a\tb",
        b"/%zz",
        b"/%+1",
        b"/%4",
        b"a/b",
    ],
)
def test_an_ambiguous_path_is_refused(raw: bytes):
    with pytest.raises(AmbiguousPath):
        normalise_path(raw)
