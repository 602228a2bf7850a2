"""The outbound policy every fetch follows: internal destinations are refused (also after a
redirect), one deadline covers the whole request, bodies are capped while streaming, and each
failure is one line. 127.0.0.2 plays a public host: the tests allow just that address."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from index import FetchError, IndexCore, IndexSettings
from index.fetch import FetchPolicy, HttpClient, fetch
from tests.fakes import HashEmbedder
from tests.http_sites import LocalSite, endless, in_slow_chunks, page, redirect, trickle

PUBLIC = (ipaddress.ip_network("127.0.0.2/32"),)
ARTICLE = (
    "<html><head><title>Harbour reopens</title></head><body><article><h1>Harbour reopens</h1>"
    "<p>The harbour reopened on Friday after the storm damage to the quay was repaired.</p>"
    "<p>Fishing boats returned the same evening and the ferry resumes its timetable.</p>"
    "</article></body></html>"
)


@pytest.fixture
async def internal() -> AsyncIterator[LocalSite]:
    """A site on 127.0.0.1: what an attacker wants the bot to read."""
    async with LocalSite("127.0.0.1") as site:
        site.route("/secret", page("internal admin panel"))
        yield site


@pytest.fixture
async def public(internal: LocalSite) -> AsyncIterator[LocalSite]:
    """A site on 127.0.0.2, the one address the tests' policy allows."""
    async with LocalSite("127.0.0.2") as site:
        site.route("/article", page(ARTICLE))
        site.route("/to-internal", redirect(internal.url("/secret")))
        site.route("/loop", redirect(lambda: site.url("/loop")))
        yield site


async def get(url: str, **policy: object) -> bytes:
    """The body at ``url`` under a policy allowing only 127.0.0.2 (unless told otherwise)."""
    options: dict[str, object] = {"timeout": 5.0, "allowed_networks": PUBLIC, **policy}
    async with HttpClient(FetchPolicy(**options)) as client:  # type: ignore[arg-type]
        return (await client.get(url)).data


async def reason(url: str, **policy: object) -> str:
    with pytest.raises(FetchError) as caught:
        await get(url, **policy)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd00::1", "a private address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("100.64.0.1", "a non-public address"),
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 of 127.0.0.1
        ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8: IPv6-only hosts reach the web so
        ("2002:a00:1::1", "a private address"),  # 6to4 of 10.0.0.1
    ],
)
def test_addresses_are_judged_by_kind(address: str, kind: str | None) -> None:
    """Every non-public kind of IPv4 and IPv6 address is refused; public ones pass."""
    assert FetchPolicy().refusal(address) == kind


def test_allowing_private_addresses_never_opens_link_local_or_multicast() -> None:
    """FETCH_ALLOW_PRIVATE lets loopback and private networks through, not cloud metadata."""
    policy = FetchPolicy(allow_private=True)
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("10.0.0.7") is None
    assert policy.refusal("fd00::7") is None
    assert policy.refusal("169.254.169.254") == "a link-local address"
    assert policy.refusal("224.0.0.1") == "a multicast address"


def test_settings_give_the_policy() -> None:
    settings = IndexSettings(  # type: ignore[call-arg]
        _env_file=None, fetch_timeout=7, max_input_bytes=1234, fetch_allow_private=True
    )
    assert FetchPolicy.from_settings(settings) == FetchPolicy(7, 1234, allow_private=True)
    assert IndexSettings(_env_file=None).fetch_allow_private is False  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:{port}/secret", "refused: 127.0.0.1 is a loopback address"),
        (
            "http://localhost:{port}/secret",
            "refused: localhost resolves to 127.0.0.1, a loopback address",
        ),
        ("http://[::ffff:127.0.0.1]:{port}/secret", "refused: ::ffff:7f00:1 is a loopback address"),
        ("http://[::1]:{port}/secret", "refused: ::1 is a loopback address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "refused: 169.254.169.254 is a link-local address",
        ),
        ("http://0.0.0.0:{port}/secret", "refused: 0.0.0.0 is an unspecified address"),
        ("ftp://127.0.0.2/file", "refused: only http:// and https:// URLs are fetched, not ftp:"),
    ],
)
async def test_internal_destinations_are_refused_before_connecting(
    internal: LocalSite, url: str, expected: str
) -> None:
    """IP literals, names resolving to loopback and IPv4-mapped IPv6 are all refused, and the
    internal site never sees a request."""
    port = internal.base_url.rsplit(":", 1)[1]

    assert await reason(url.format(port=port)) == expected
    assert internal.requests == []


async def test_a_redirect_from_an_allowed_host_to_loopback_is_refused(
    public: LocalSite, internal: LocalSite
) -> None:
    """The allowed host is fetched; its redirect to 127.0.0.1 is checked and refused."""
    assert b"Harbour reopens" in await get(public.url("/article"))

    assert await reason(public.url("/to-internal")) == "refused: 127.0.0.1 is a loopback address"
    assert public.requests == ["/article", "/to-internal"]
    assert internal.requests == []


async def test_allow_private_reaches_loopback(internal: LocalSite) -> None:
    """With FETCH_ALLOW_PRIVATE (intranet, local tests) a loopback page is fetched."""
    assert await get(internal.url("/secret"), allow_private=True) == b"internal admin panel"


async def test_a_redirect_loop_gives_a_one_line_reason(public: LocalSite) -> None:
    assert await reason(public.url("/loop")) == "too many redirects (limit 5)"
    assert public.requests == ["/loop"] * 6


async def test_a_trickling_server_fails_at_the_whole_request_deadline(public: LocalSite) -> None:
    """A byte every 0.2 s never trips a per-read timeout; the 1 s deadline ends it."""
    url = public.route("/trickle", trickle(interval=0.2))
    started = time.monotonic()

    assert await reason(url, timeout=1.0) == "no complete answer within 1 s"
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("announce", [False, True], ids=["streamed", "content-length"])
async def test_a_hundred_megabytes_are_too_large(public: LocalSite, announce: bool) -> None:
    """100 MB (generated, never stored) stops at MAX_INPUT_BYTES, announced or not."""
    url = public.route("/huge", endless(100_000_000, announce=announce))

    message = await reason(url)

    expected = "larger than 5,000,000 bytes"
    assert message == (expected + " (100,000,000 announced)" if announce else expected)


async def test_a_page_sent_in_slow_chunks_arrives_whole(public: LocalSite) -> None:
    body = bytes(range(256)) * 4096  # 1 MB
    url = public.route("/slow", in_slow_chunks(body))

    assert await get(url) == body


async def test_ingest_url_reports_the_refusal_and_never_connects(
    tmp_path: Path, internal: LocalSite
) -> None:
    """`python -m index ingest URL` and /add: a loopback URL fails with one line."""
    url = internal.url("/secret")
    settings = IndexSettings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    core = await asyncio.to_thread(IndexCore.open, settings, HashEmbedder())
    try:
        report = await asyncio.to_thread(core.ingest, [url])
    finally:
        core.close()

    assert report.failed == [(url, "refused: 127.0.0.1 is a loopback address")]
    assert internal.requests == []


async def test_ingest_url_gives_up_on_a_trickling_page_at_the_deadline(
    tmp_path: Path, internal: LocalSite
) -> None:
    """A stuck page cannot hold an ingest worker: the reason comes at FETCH_TIMEOUT."""
    url = internal.route("/trickle", trickle(interval=0.2))
    settings = IndexSettings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path, fetch_timeout=1, fetch_allow_private=True
    )
    core = await asyncio.to_thread(IndexCore.open, settings, HashEmbedder())
    started = time.monotonic()
    try:
        report = await asyncio.to_thread(core.ingest, [url])
    finally:
        core.close()

    assert report.failed == [(url, "no complete answer within 1 s")]
    assert time.monotonic() - started < 3


async def test_sync_fetch_follows_the_same_policy(public: LocalSite, internal: LocalSite) -> None:
    """``fetch`` (CLI and worker threads) runs the same client in its own event loop."""
    policy = FetchPolicy(timeout=5, allowed_networks=PUBLIC)

    response = await asyncio.to_thread(fetch, public.url("/article"), policy)
    with pytest.raises(FetchError) as refused:
        await asyncio.to_thread(fetch, public.url("/to-internal"), policy)

    assert response.content_type == "text/html" and b"Harbour reopens" in response.data
    assert str(refused.value) == "refused: 127.0.0.1 is a loopback address"
    assert internal.requests == []


async def test_a_hanging_dns_lookup_cannot_hold_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadline covers name resolution too, and ``fetch`` returns without waiting for the
    lookup thread it leaves behind."""
    release = threading.Event()

    def hanging(*args: object, **kwargs: object) -> object:
        release.wait(10)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    started = time.monotonic()
    try:
        with pytest.raises(FetchError) as caught:
            await asyncio.to_thread(fetch, "http://hanging-dns.test/", FetchPolicy(timeout=1))
    finally:
        release.set()

    assert str(caught.value) == "no complete answer within 1 s"
    assert time.monotonic() - started < 2.5
