"""The egress policy: where CC may connect when a tenant or a vendor chooses the URL.

Notification receivers (a tenant's ``PUT /v1/notifications``) and the recording URLs a vendor
reports are fetched through ``egress_client``, which:

- parses the URL with httpx and refuses a numeric host in any form but the canonical one
  (``0x7f000001``, ``2130706433``, ``127.1`` are refused; ``0177.0.0.1`` is not a URL at all);
- resolves the host once and connects to that very address (the URL is rewritten to the
  address; the ``Host`` header, TLS SNI and the certificate check keep the real host name), so
  DNS cannot answer one address to the check and another to the connection;
- refuses unspecified, loopback, link-local (169.254.169.254 too), multicast, CGNAT
  (100.64.0.0/10, so Aliyun's 100.100.100.200), private (RFC 1918, ULA), reserved and any
  other not globally routable address, also inside IPv4-mapped, 6to4 and NAT64 IPv6 forms —
  unless ``CC_EGRESS_ALLOW`` covers it;
- for notification receivers, requires https: plain http only to a destination
  ``CC_EGRESS_ALLOW`` covers (the operator's own network, a local receiver);
- follows no redirect, reads no proxy from the environment and keeps no connection alive
  (a pooled connection is keyed by address, and two host names may share one).

``CC_EGRESS_ALLOW`` (a JSON list) names what the operator allows: an IP network with any port
(``"10.0.0.0/8"``, ``"127.0.0.1"``, ``"::1"``) or one host and port (``"127.0.0.1:8099"``,
``"[::1]:8099"``, ``"hooks.internal:8443"``; a host name entry allows whatever it resolves
to). ``make run`` and the test stacks allow 127.0.0.1 and ::1 (the simulators, the README's
receiver). A deadline for a request as a whole (``asyncio.timeout``) and a cap on what is read
(``read_capped``) are the caller's: each use has its own. Errors a tenant sees name the class
of the failure (``describe_failure``), never what the target answered.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from core.config import CoreSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_ADDRESS_CLASSES: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified", lambda a: a.is_unspecified),
    ("loopback", lambda a: a.is_loopback),
    ("link-local", lambda a: a.is_link_local),
    ("multicast", lambda a: a.is_multicast),
    ("shared (CGNAT)", lambda a: a in _CGNAT),
    ("private", lambda a: a.is_private),
    ("reserved", lambda a: a.is_reserved),
    ("not globally routable", lambda a: not a.is_global),
)
REFUSED = "refused by egress policy"


class EgressRefused(Exception):
    """The policy refuses this URL or the address its host resolves to; ``reason`` says why
    (the tenant's own input, never a target's answer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{REFUSED}: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower case, IDNA-encoded, no trailing dot; an IPv6 address without brackets
    port: int

    @classmethod
    def of(cls, url: str | httpx.URL) -> Target:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise EgressRefused("not a URL") from exc
        if parsed.scheme not in ("http", "https") or not parsed.raw_host:
            raise EgressRefused("not an http(s) URL with a host")
        host = parsed.raw_host.decode("ascii").lower().rstrip(".")
        if literal_address(host) is None and _odd_numeric(host):
            raise EgressRefused("a numeric host not written as a plain IP address")
        return cls(parsed.scheme, host, parsed.port or (443 if parsed.scheme == "https" else 80))

    @property
    def address(self) -> IPAddress | None:
        return literal_address(self.host)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _odd_numeric(host: str) -> bool:
    """Hex, octal, integer or short IPv4 forms the C resolver reads as an address, and IPv6
    literals ipaddress does not take (a zone id)."""
    if ":" in host or "%" in host:
        return True
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def address_class(address: IPAddress) -> str | None:
    """The class that makes ``address`` refused (``"loopback"``, ``"private"``, ...), or None
    for a public one. An IPv4 address inside an IPv6 form is judged as itself."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_class(embedded)
    return next((name for name, test in _ADDRESS_CLASSES if test(address)), None)


def _unwrapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class AllowRule:
    """One ``CC_EGRESS_ALLOW`` entry: a network (any port), or one host and port."""

    network: IPNetwork | None = None
    host: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> AllowRule:
        try:
            return cls(network=ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            pass
        try:
            parts = urlsplit(f"//{entry.strip()}")
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise ValueError(f"CC_EGRESS_ALLOW: {entry!r} is no network or host:port") from exc
        if not host or port is None or parts.path or parts.query or parts.username:
            raise ValueError(f"CC_EGRESS_ALLOW: {entry!r} is no network or host:port")
        address = literal_address(host)
        if address is not None:
            return cls(network=ipaddress.ip_network(address), port=port)
        return cls(host=host.rstrip("."), port=port)

    def covers(self, target: Target, address: IPAddress | None) -> bool:
        if self.port is not None and self.port != target.port:
            return False
        if self.host is not None:
            return self.host == target.host
        return (
            address is not None
            and self.network is not None
            and (address in self.network or _unwrapped(address) in self.network)
        )


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives ``host``, in its order, once each."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: dict[IPAddress, None] = {}
    for *_, sockaddr in infos:
        found[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
    return list(found)


@dataclass(frozen=True)
class Admitted:
    """A URL the policy admits, and the address to connect to."""

    target: Target
    address: IPAddress | None  # None: not resolved (see ``EgressPolicy.admit``)


@dataclass(frozen=True)
class EgressPolicy:
    allow: tuple[AllowRule, ...] = ()
    resolver: Resolver = system_resolver

    @classmethod
    def from_settings(
        cls, settings: CoreSettings, resolver: Resolver = system_resolver
    ) -> EgressPolicy:
        return cls(tuple(AllowRule.parse(e) for e in settings.egress_allow), resolver)

    def allowing(self, entries: Iterable[str]) -> EgressPolicy:
        return EgressPolicy(self.allow + tuple(AllowRule.parse(e) for e in entries), self.resolver)

    async def admit(
        self,
        url: str | httpx.URL,
        *,
        require_https: bool,
        must_resolve: bool = True,
        resolve_s: float | None = None,
    ) -> Admitted:
        """The address to connect to for ``url``: every address its host resolves to must
        pass (else ``EgressRefused``). A host that does not resolve (within ``resolve_s``)
        raises ``socket.gaierror`` (``TimeoutError``) or, when ``must_resolve`` is false (a
        subscription: DNS may come later), is admitted unresolved if https is not required
        or the URL is https."""
        target = Target.of(url)
        try:
            async with asyncio.timeout(resolve_s):
                addresses = await self._addresses(target)
        except (socket.gaierror, TimeoutError):
            if must_resolve:
                raise
            self._judge(target, None, require_https)
            return Admitted(target, None)
        for address in addresses:
            self._judge(target, address, require_https)
        return Admitted(target, addresses[0])

    async def _addresses(self, target: Target) -> list[IPAddress]:
        if target.address is not None:
            return [target.address]
        addresses = await self.resolver(target.host, target.port)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "no address")
        return addresses

    def _judge(self, target: Target, address: IPAddress | None, require_https: bool) -> None:
        if any(rule.covers(target, address) for rule in self.allow):
            return
        if require_https and target.scheme != "https":
            raise EgressRefused("https is required (plain http only to allowed destinations)")
        found = address_class(address) if address is not None else None
        if found is not None:
            raise EgressRefused(f"a {found} address")


class PinnedTransport(httpx.AsyncBaseTransport):
    """Admits each request by the policy, then sends it to the very address it resolved to."""

    def __init__(
        self, policy: EgressPolicy, require_https: bool, inner: httpx.AsyncBaseTransport
    ) -> None:
        self._policy, self._require_https, self._inner = policy, require_https, inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            admitted = await self._policy.admit(request.url, require_https=self._require_https)
        except socket.gaierror as exc:  # the name does not resolve: nothing was sent
            raise httpx.ConnectError("host not found", request=request) from exc
        assert admitted.address is not None
        # Host header (set from the URL already), SNI and certificate: the real host name.
        request.url = request.url.copy_with(host=str(admitted.address))
        request.extensions = {**request.extensions, "sni_hostname": admitted.target.host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def egress_client(
    policy: EgressPolicy,
    *,
    require_https: bool,
    timeout_s: float,
    transport: httpx.AsyncBaseTransport | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    """An httpx client whose every request passes ``policy``; ``timeout_s`` bounds each
    network step (the caller's ``asyncio.timeout`` bounds the request as a whole);
    ``transport`` replaces the network below the policy (tests)."""
    inner = transport or httpx.AsyncHTTPTransport(
        verify=verify, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
    )
    return httpx.AsyncClient(
        transport=PinnedTransport(policy, require_https, inner),
        follow_redirects=False,
        trust_env=False,
        timeout=timeout_s,
        headers={"accept-encoding": "identity"},
    )


async def read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """At most ``max_bytes`` of the answer, as sent (never decompressed), and whether that
    was all of it; reading stops there (closing the response drops the rest)."""
    if response.is_stream_consumed:  # read already: an answer made in memory
        return response.content[:max_bytes], len(response.content) <= max_bytes
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            return bytes(body[:max_bytes]), False
    return bytes(body), True


def describe_failure(exc: BaseException, deadline_s: float) -> str:
    """The class of a failed request, for a tenant: refused by the policy, a timeout, a
    connection or TLS failure, a bad answer. Never the target's own words."""
    if isinstance(exc, EgressRefused):
        return REFUSED
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"timeout: no answer within {deadline_s:g} s"
    causes = _causes(exc)
    if tls := next((c for c in causes if isinstance(c, ssl.SSLError)), None):
        if isinstance(tls, ssl.SSLCertVerificationError):
            return f"TLS certificate error: {tls.verify_message or 'not trusted'}"
        return "TLS error"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {_connect_reason(exc, causes)}"
    if isinstance(exc, httpx.ProtocolError | httpx.DecodingError):
        return "bad answer: not valid HTTP"
    return f"request failed: {exc.__class__.__name__}"


def _causes(exc: BaseException) -> list[BaseException]:
    causes: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 10:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    return causes


def _connect_reason(exc: httpx.ConnectError, causes: list[BaseException]) -> str:
    if any(isinstance(c, socket.gaierror) for c in causes):
        return "host not found"
    reason = next((c for c in reversed(causes) if isinstance(c, OSError) and c.errno), None)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return (reason.strerror if reason is not None else None) or "no connection"
