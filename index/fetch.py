"""Every outbound HTTP request goes through here: the outbound policy in one place.

Feeds, teaser pages, ``/add URL`` and ``python -m index ingest URL`` all use ``HttpClient``
(``fetch`` runs it from synchronous code). The policy, ``FetchPolicy``:

- only ``http://`` and ``https://`` URLs;
- every address a connection would go to is checked right before connecting: each address a
  host name resolves to (one refused address refuses the host) and IP literals, on every
  redirect hop, so a redirect or a DNS answer that changes between checks cannot reach an
  internal address. Loopback, private, link-local, multicast, reserved, unspecified and other
  non-public addresses (IPv4, IPv6, IPv4-mapped IPv6) are refused. ``FETCH_ALLOW_PRIVATE``
  lets loopback and private networks through (intranet deployments, local tests), never
  link-local (cloud metadata endpoints), multicast or reserved ones;
- redirects are followed here, at most ``max_redirects``;
- one deadline (``FETCH_TIMEOUT``) covers the whole request: connecting, every redirect, the
  headers and the whole body;
- the body is streamed and abandoned past ``MAX_INPUT_BYTES`` (after decompression), and a
  larger ``Content-Length`` is refused before reading.

Every failure raises ``FetchError`` with a one-line reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from types import TracebackType
from typing import TYPE_CHECKING

from index.errors import FetchError

if TYPE_CHECKING:  # aiohttp is imported when a request is made (0.2 s of every start)
    import aiohttp
    from aiohappyeyeballs import AddrInfoType
    from aiohttp.abc import AbstractResolver
    from yarl import URL

    from index.settings import IndexSettings

__all__ = ["FetchPolicy", "HttpClient", "Response", "fetch", "is_url"]

USER_AGENT = "newsbot/0.1 (+article indexer)"
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOWED_WHEN_PRIVATE = frozenset({"loopback", "private", "non-public"})
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Where requests may go, for how long, and how much they may bring back."""

    timeout: float = 20.0  # seconds for the whole request, redirects and body included
    max_bytes: int = 5_000_000
    allow_private: bool = False  # loopback and private networks (FETCH_ALLOW_PRIVATE)
    max_redirects: int = MAX_REDIRECTS
    allowed_networks: tuple[IPNetwork, ...] = ()  # always allowed, whatever their kind

    @classmethod
    def from_settings(cls, settings: IndexSettings) -> FetchPolicy:
        return cls(
            timeout=settings.fetch_timeout,
            max_bytes=settings.max_input_bytes,
            allow_private=settings.fetch_allow_private,
        )

    def refusal(self, address: str) -> str | None:
        """Why connecting to the IP ``address`` is refused ("a loopback address"), or None
        when it is allowed."""
        ip = embedded_ipv4(ipaddress.ip_address(address.split("%", 1)[0]))  # no IPv6 zone
        if any(ip in network for network in self.allowed_networks):
            return None
        kind = address_kind(ip)
        if kind is None or (self.allow_private and kind in ALLOWED_WHEN_PRIVATE):
            return None
        return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address"


def embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, NAT64 well-known prefix,
    6to4), since that is where the packets end up; else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour or ip


def address_kind(ip: IPAddress) -> str | None:
    """What kind of non-public address ``ip`` is, or None for a public one."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-public"
    return None


class _Refused(OSError):
    """A destination address refused by the policy (an OSError so aiohttp passes it on)."""


@cache
def _checked_resolver() -> Callable[[FetchPolicy], AbstractResolver]:
    """The resolver class (made on first use, when aiohttp is imported)."""
    from aiohttp.abc import ResolveResult
    from aiohttp.resolver import ThreadedResolver

    class CheckedResolver(ThreadedResolver):
        """Resolves host names and refuses the host when any of its addresses is refused."""

        def __init__(self, policy: FetchPolicy) -> None:
            super().__init__()
            self._policy = policy

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            results = await super().resolve(host, port, family)
            for result in results:
                reason = self._policy.refusal(result["host"])
                if reason is not None:
                    raise _Refused(f"refused: {host} resolves to {result['host']}, {reason}")
            return results

    return CheckedResolver


def _checked_socket(policy: FetchPolicy, addr_info: AddrInfoType) -> socket.socket:
    """The socket aiohttp connects to ``addr_info`` with; the last gate before connecting,
    and the only one for IP literals, which aiohttp does not send to the resolver."""
    family, type_, proto, _, sockaddr = addr_info
    address = str(sockaddr[0])
    reason = policy.refusal(address)
    if reason is not None:
        raise _Refused(f"refused: {address} is {reason}")
    return socket.socket(family=family, type=type_, proto=proto)


@dataclass(frozen=True, slots=True)
class Response:
    """A complete answer: the final URL, status, headers and the whole body (empty for 304)."""

    url: str  # after redirects
    status: int
    content_type: str
    headers: Mapping[str, str]
    data: bytes
    redirects: tuple[int, ...]  # statuses of the redirects followed, in order


class HttpClient:
    """One aiohttp session whose every request follows ``policy``; ``get`` raises
    ``FetchError`` with a one-line reason."""

    def __init__(self, policy: FetchPolicy, *, user_agent: str = USER_AGENT) -> None:
        self.policy = policy
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=_checked_resolver()(self.policy),
                socket_factory=partial(_checked_socket, self.policy),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self._user_agent},
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout),
                trust_env=False,  # no proxy from the environment: connect where we checked
            )
        return self._session

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        """GET ``url``, following redirects, within the policy's deadline and size."""
        import aiohttp

        try:
            async with asyncio.timeout(self.policy.timeout):
                return await self._follow(url, dict(headers or {}))
        except TimeoutError:
            raise FetchError(f"no complete answer within {self.policy.timeout:g} s") from None
        except aiohttp.ClientError as error:
            raise FetchError(_one_line(_reason(error))) from None

    async def _follow(self, url: str, headers: dict[str, str]) -> Response:
        session = self._open()
        target = _parse(url)
        redirects: list[int] = []
        while True:
            async with session.get(target, headers=headers, allow_redirects=False) as response:
                location = response.headers.get("Location")
                if response.status in REDIRECT_STATUSES and location:
                    if len(redirects) == self.policy.max_redirects:
                        raise FetchError(f"too many redirects (limit {self.policy.max_redirects})")
                    redirects.append(response.status)
                    target = _parse(location, base=response.url)
                    continue
                if response.status >= 300 and response.status != 304:
                    reason = _one_line(response.reason or "")
                    raise FetchError(f"HTTP {response.status} {reason}".strip())
                data = b"" if response.status == 304 else await self._body(response)
                return Response(
                    url=str(response.url),
                    status=response.status,
                    content_type=response.content_type or "application/octet-stream",
                    headers=response.headers,
                    data=data,
                    redirects=tuple(redirects),
                )

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.policy.max_bytes
        if response.content_length is not None and response.content_length > limit:
            response.close()
            raise FetchError(f"larger than {limit:,} bytes ({response.content_length:,} announced)")
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                response.close()
                raise FetchError(f"larger than {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _parse(url: str, *, base: URL | None = None) -> URL:
    """``url`` (relative to ``base``) as an absolute http(s) URL; FetchError otherwise."""
    from yarl import URL

    try:
        target = URL(url)
        if base is not None:
            target = base.join(target)
    except (ValueError, TypeError):
        raise FetchError(f"invalid URL ({_one_line(url)[:100]})") from None
    if target.scheme not in ("http", "https"):
        what = f"{target.scheme}:" if target.scheme else "a URL without one"
        raise FetchError(f"refused: only http:// and https:// URLs are fetched, not {what}")
    if not target.host:
        raise FetchError(f"invalid URL ({_one_line(url)[:100]}: no host)")
    return target.with_fragment(None)


def _reason(error: aiohttp.ClientError) -> str:
    """A one-line reason for an aiohttp error, in words an admin can act on."""
    import aiohttp

    if isinstance(error, aiohttp.ClientConnectorError):
        cause = error.os_error
        if isinstance(cause, _Refused) or "refused: " in str(cause):
            return str(cause)
        where = f"{error.host}:{error.port}"
        if isinstance(error, aiohttp.ClientConnectorDNSError):
            return f"cannot resolve {error.host} ({cause.strerror or cause})"
        if isinstance(error, aiohttp.ClientConnectorCertificateError):
            return f"the TLS certificate of {where} is not valid ({error.certificate_error})"
        if isinstance(error, aiohttp.ClientSSLError):
            return f"TLS failed with {where}"
        return f"cannot connect to {where} ({os.strerror(cause.errno) if cause.errno else cause})"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server closed the connection before answering"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "the answer was cut off or badly encoded"
    if isinstance(error, aiohttp.InvalidURL):
        return f"invalid URL ({error})"
    if isinstance(error, aiohttp.ClientResponseError):
        return f"not a valid HTTP answer ({error.message})"
    return f"cannot fetch ({error.__class__.__name__}: {error})"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def fetch(url: str, policy: FetchPolicy) -> Response:
    """GET ``url`` under ``policy`` from synchronous code (the CLI, a worker thread)."""

    async def once() -> Response:
        async with HttpClient(policy) as client:
            return await client.get(url)

    # Not asyncio.run: its shutdown waits for the executor, where a DNS lookup cut off by
    # the deadline may still be running; closing the loop leaves that thread to finish alone.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(once())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
