"""Outbound HTTP for tools, guarded against server-side request forgery.

Every hop of every request: the URL must be http(s); the host is resolved once; every address
it resolves to must be public (not loopback, private, link-local, multicast, reserved,
unspecified, shared or a cloud metadata endpoint, also when written in decimal, octal or hex or
embedded in IPv6); the connection goes to the address that was checked (so a second DNS answer
cannot redirect it), with the requested host name in `Host` and in TLS SNI/certificate checks.
Redirects are followed by hand (at most 5), each one checked again. Response bodies are capped.

Hosts named in the `TOOLS_ALLOWED_HOSTS` setting skip the address check (an operator's choice,
e.g. an internal search server, or 127.0.0.1 in tests). Entries are exact host names or
addresses, with an optional port (`127.0.0.1:8081`, `[::1]:8081`, `search.corp:443`) that
limits the entry to that port; an entry starting with `.` also allows every sub-domain.

Whatever the allow-list says, tools never reach this service's own ports on a non-public
address: the web ports (APP_PORTS) and the Redis server(s) it uses. An allow-listed 127.0.0.1
would otherwise open the admin and Redis to whoever writes a tool call.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.client import HTTPException
from typing import Literal
from urllib.parse import unquote, urljoin, urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.util.ssl_match_hostname import CertificateError

from tools.base import CancelScope, ToolError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "Mozilla/5.0 (compatible; AsyncAgent/1.0)"

# Metadata endpoints that are not already covered by the private/link-local ranges.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

# Headers a redirect to another host must not carry along.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|\d+)(\.(0x[0-9a-f]*|\d+)){0,3}$", re.IGNORECASE)


class UnsafeUrlError(ToolError):
    """The URL is not allowed: bad scheme, or a host that is (or resolves to) a private address."""


class FetchError(ToolError):
    """The request could not be completed (DNS, connection, timeout, protocol, size)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect and what to send."""

    url: str
    scheme: str
    host: str  # ASCII, lowercase, no brackets
    port: int
    request_target: str  # path + query
    addresses: tuple[str, ...]
    host_header: str
    basic_auth: str | None = None


@dataclass
class HttpResult:
    url: str  # the final URL, after redirects
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    truncated: bool = False
    redirects: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        match = re.search(r"charset=([\w.:-]+)", self.headers.get("content-type", ""), re.I)
        return match.group(1).strip("\"'") if match else None

    def text(self) -> str:
        charset = self.charset or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


# --- Addresses ------------------------------------------------------------------------------


def parse_numeric_host(host: str) -> IPAddress | None:
    """The address behind an IP literal, including the inet_aton spellings browsers accept.

    `2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1` all mean 127.0.0.1. Returns None for a
    host that is not numeric; raises UnsafeUrlError for a numeric host that is malformed.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _NUMERIC_HOST.match(host):
        return None
    parts = host.split(".")
    values: list[int] = []
    for part in parts:
        try:
            if part.lower().startswith("0x"):
                values.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                values.append(int(part, 8))
            else:
                values.append(int(part, 10))
        except ValueError:
            raise UnsafeUrlError(f"'{host}' is not a valid numeric address.") from None
    *leading, last = values
    if any(value > 255 for value in leading) or last >= 256 ** (4 - len(leading)):
        raise UnsafeUrlError(f"'{host}' is not a valid numeric address.")
    number = 0
    for value in leading:
        number = number * 256 + value
    number = number * 256 ** (4 - len(leading)) + last
    return ipaddress.IPv4Address(number)


def blocked_reason(address: IPAddress) -> str | None:
    """Why connecting to `address` is refused, or None when it is a public address."""
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = blocked_reason(embedded)
            return f"{reason} (IPv4 inside IPv6)" if reason else None
        if address.is_site_local:
            return "site-local"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    )
    for label, hit in checks:
        if hit:
            return label
    if not address.is_global:
        return "non-public"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64_PREFIX or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _split_entry(entry: str) -> tuple[str, int | None]:
    """An allow-list entry as (host, port or None): `host`, `host:port`, `[v6]`, `[v6]:port`
    or a bare IPv6 address."""
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:
        host, port = entry, ""
    return _normalize_host(host), int(port) if port.isdigit() else None


def host_is_allowed(host: str, extra: Iterable[str] = (), port: int | None = None) -> bool:
    """Whether `host` (on `port`, when given) is on the allow-list or in `extra`. An entry with
    a port allows only that port."""
    host = _normalize_host(host)
    for raw in [*getattr(settings, "TOOLS_ALLOWED_HOSTS", []), *extra]:
        entry, entry_port = _split_entry(str(raw))
        if not entry:
            continue
        if entry_port is not None and entry_port != port:
            continue
        if entry.startswith(".") and (host.endswith(entry) or host == entry[1:]):
            return True
        if entry.startswith("*.") and (host.endswith(entry[1:]) or host == entry[2:]):
            return True
        if host == entry:
            return True
    return False


def protected_ports() -> dict[int, str]:
    """This service's own ports that tools must never reach on a non-public address."""
    ports: dict[int, str] = {}
    for url in {
        str(getattr(settings, "REDIS_URL", "") or ""),
        str(getattr(settings, "CELERY_BROKER_URL", "") or ""),
    }:
        try:
            parts = urlsplit(url)
            if parts.scheme.startswith("redis") or parts.scheme == "rediss":
                ports[parts.port or 6379] = "Redis"
        except ValueError:
            continue
    for port in getattr(settings, "APP_PORTS", []):
        ports.setdefault(int(port), "web")
    return ports


def _refuse_if_protected(host: str, port: int, addresses: Iterable[str]) -> None:
    kind = protected_ports().get(port)
    if kind is None:
        return
    if all(blocked_reason(ipaddress.ip_address(address)) is None for address in addresses):
        return  # a public server that happens to use the same port number
    raise UnsafeUrlError(
        f"Refusing to request {host}:{port}: it is this service's own {kind} port, which tools "
        "never reach (not even through TOOLS_ALLOWED_HOSTS)."
    )


def resolve_host(host: str, port: int) -> list[str]:
    """All addresses `host` resolves to, in the resolver's order, without duplicates."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError(f"Could not resolve host '{host}': {error}", retryable=True) from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError(f"Host '{host}' has no addresses.", retryable=True)
    return addresses


def check_url(url: str, *, extra_allowed_hosts: Iterable[str] = ()) -> Target:
    """Parse, resolve and vet `url`; raise UnsafeUrlError when it must not be requested."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeUrlError("The URL is empty.")
    url = url.strip()
    if any(ch in url for ch in "\r\n\t\x00"):
        raise UnsafeUrlError("The URL contains control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeUrlError(f"'{url}' is not a valid URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrlError(f"Only http and https URLs can be requested (got '{url}').")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise UnsafeUrlError(f"'{url}' has no host name.")
    try:
        host = _normalize_host(raw_host).encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeUrlError(f"'{raw_host}' is not a valid host name.") from None
    if not host:
        raise UnsafeUrlError(f"'{url}' has no host name.")
    port = port or (443 if scheme == "https" else 80)
    allowed = host_is_allowed(host, extra_allowed_hosts, port=port)

    if not allowed and (host in METADATA_HOSTNAMES or host.endswith(".internal")):
        raise UnsafeUrlError(f"Refusing to request '{host}': it is a cloud metadata host.")

    literal = parse_numeric_host(host)
    if literal is not None:
        if isinstance(literal, ipaddress.IPv6Address) and literal.scope_id:
            raise UnsafeUrlError("IPv6 addresses with a zone are not allowed.")
        if not allowed or str(literal) != host:
            _refuse_if_blocked(host, literal)
        addresses = [str(literal)]
    else:
        addresses = resolve_host(host, port)
        if not allowed:
            for address in addresses:
                _refuse_if_blocked(host, ipaddress.ip_address(address))
    _refuse_if_protected(host, port, addresses)

    request_target = parts.path or "/"
    if parts.query:
        request_target += "?" + parts.query
    default_port = 443 if scheme == "https" else 80
    display_host = f"[{host}]" if ":" in host else host
    host_header = display_host if port == default_port else f"{display_host}:{port}"
    basic_auth = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        basic_auth = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        request_target=request_target,
        addresses=tuple(addresses),
        host_header=host_header,
        basic_auth=basic_auth,
    )


def _refuse_if_blocked(host: str, address: IPAddress) -> None:
    reason = blocked_reason(address)
    if reason is None:
        return
    shown = host if str(address) == host else f"{host} ({address})"
    raise UnsafeUrlError(
        f"Refusing to request {shown}: it is a {reason} address. Only public addresses are "
        "allowed unless the host is listed in TOOLS_ALLOWED_HOSTS."
    )


# --- Requests -------------------------------------------------------------------------------


def guarded_request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 15.0,
    max_bytes: int | None = None,
    oversize: Literal["error", "truncate"] = "error",
    max_redirects: int = MAX_REDIRECTS,
    cancel: CancelScope | None = None,
    extra_allowed_hosts: Iterable[str] = (),
) -> HttpResult:
    """Send one request (following up to `max_redirects` redirects), every hop guarded.

    `timeout` bounds the whole request, redirects included; `cancel` (the tool call's scope)
    can stop it at any moment. A body larger than `max_bytes` is an error, or cut when
    `oversize="truncate"`.
    """
    cancel = cancel or CancelScope()
    max_bytes = max_bytes or settings.TOOLS_FETCH_MAX_BYTES
    extra_allowed_hosts = tuple(extra_allowed_hosts)
    deadline = time.monotonic() + timeout
    current_url = url
    current_method = method.upper()
    current_body = body
    current_headers = dict(headers or {})
    redirects: list[str] = []
    previous_host: str | None = None
    while True:
        cancel.check()
        try:
            target = check_url(current_url, extra_allowed_hosts=extra_allowed_hosts)
        except UnsafeUrlError as error:
            if redirects:
                raise UnsafeUrlError(f"Redirect to {current_url} refused: {error}") from None
            raise
        if previous_host is not None and target.host != previous_host:
            current_headers = {
                name: value
                for name, value in current_headers.items()
                if name.lower() not in CREDENTIAL_HEADERS
            }
        result = _send_once(
            target,
            timeout=timeout,
            method=current_method,
            headers=current_headers,
            body=current_body,
            deadline=deadline,
            max_bytes=max_bytes,
            oversize=oversize,
            cancel=cancel,
        )
        location = result.headers.get("location")
        if result.status not in REDIRECT_STATUSES or not location:
            result.redirects = redirects
            return result
        if len(redirects) >= max_redirects:
            raise FetchError(f"Too many redirects (more than {max_redirects}) from {url}.")
        next_url = urljoin(target.url, location.strip())
        logger.debug("tool request redirected (%s) %s -> %s", result.status, target.host, next_url)
        redirects.append(next_url)
        if result.status == 303 or (result.status in (301, 302) and current_method == "POST"):
            current_method = "GET" if current_method != "HEAD" else "HEAD"
            current_body = None
            current_headers = {
                name: value
                for name, value in current_headers.items()
                if name.lower() not in ("content-type", "content-length")
            }
        previous_host = target.host
        current_url = next_url


def _send_once(
    target: Target,
    *,
    timeout: float,
    method: str,
    headers: Mapping[str, str],
    body: bytes | None,
    deadline: float,
    max_bytes: int,
    oversize: str,
    cancel: CancelScope,
) -> HttpResult:
    def time_left() -> float:
        left = min(deadline - time.monotonic(), cancel.remaining())
        if left <= 0:
            raise FetchError(f"Timed out requesting {target.url}.", retryable=True)
        return left

    send_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    if target.basic_auth:
        send_headers["Authorization"] = target.basic_auth
    send_headers.update({name: value for name, value in headers.items()})
    # Always ours: the checked host and a connection that is not reused.
    for name in list(send_headers):
        if name.lower() in ("host", "connection", "content-length", "transfer-encoding"):
            del send_headers[name]
    send_headers["Host"] = target.host_header
    send_headers["Connection"] = "close"

    last_error: Exception | None = None
    for address in target.addresses:
        connection = _connection_for(target, address, time_left())
        try:
            with cancel.on_cancel(functools.partial(_close_quietly, connection)):
                connection.connect()
        except Exception as error:
            _close_quietly(connection)
            cancel.check()
            last_error = error
            logger.info("connect to %s (%s) failed: %s", target.host, address, error)
            continue
        # http.client drops `connection.sock` once a response is read to the end of the
        # connection, so keep the socket itself: shutting it down is what stops a read.
        sock = connection.sock
        # The timeout is a deadline for the whole answer: a server that sends a byte now and
        # then would otherwise keep each read (and so the request) going indefinitely.
        watchdog = _Deadline(deadline, lambda sock=sock: _shutdown(sock))
        try:
            with cancel.on_cancel(functools.partial(_shutdown, sock)), watchdog:
                return _exchange(
                    connection,
                    sock,
                    target,
                    method=method,
                    headers=send_headers,
                    body=body,
                    time_left=time_left,
                    max_bytes=max_bytes,
                    oversize=oversize,
                    cancel=cancel,
                )
        except ToolError:
            if watchdog.fired:
                raise _deadline_error(target, timeout) from None
            raise
        except Exception as error:
            cancel.check()
            if watchdog.fired:
                raise _deadline_error(target, timeout) from None
            logger.debug("request to %s failed", target.url, exc_info=True)
            raise _transport_error(target, error) from None
        finally:
            _shutdown(sock)
            _close_quietly(connection)
    cancel.check()
    raise _transport_error(target, last_error)


class _Deadline:
    """Calls `expire` once the monotonic `deadline` passes, unless left before."""

    def __init__(self, deadline: float, expire) -> None:
        self.fired = False
        self._expire = expire
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        self._expire()

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()


def _deadline_error(target: Target, timeout: float) -> FetchError:
    return FetchError(
        f"Timed out requesting {target.url}: no complete answer within {timeout:g} s.",
        retryable=True,
    )


def _connection_for(target: Target, address: str, timeout: float) -> HTTPConnection:
    if target.scheme == "https":
        # Connect to the checked address; SNI and the certificate check use the host name.
        return HTTPSConnection(
            address,
            target.port,
            timeout=timeout,
            server_hostname=target.host,
            assert_hostname=target.host,
            ssl_context=tls_context(),
        )
    return HTTPConnection(address, target.port, timeout=timeout)


def tls_context() -> ssl.SSLContext:
    """Certificate checks against certifi's roots, the system's, and TOOLS_CA_BUNDLE."""
    return _tls_context(str(getattr(settings, "TOOLS_CA_BUNDLE", "") or ""))


@functools.lru_cache(maxsize=4)
def _tls_context(extra_bundle: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_default_certs()
    if extra_bundle:
        context.load_verify_locations(cafile=extra_bundle)
    return context


def _exchange(
    connection: HTTPConnection,
    sock: socket.socket,
    target: Target,
    *,
    method: str,
    headers: Mapping[str, str],
    body: bytes | None,
    time_left,
    max_bytes: int,
    oversize: str,
    cancel: CancelScope,
) -> HttpResult:
    connection.request(
        method, target.request_target, body=body, headers=headers, preload_content=False
    )
    _set_timeout(sock, time_left())
    response = connection.getresponse()
    response_headers = {name.lower(): value for name, value in response.headers.items()}
    status = response.status
    reason = response.reason or _phrase(status)
    if status in REDIRECT_STATUSES and response_headers.get("location"):
        return HttpResult(target.url, status, reason, response_headers, b"")
    declared = response_headers.get("content-length", "")
    if oversize == "error" and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"The response from {target.url} is larger than {max_bytes} bytes.")
    chunks: list[bytes] = []
    size = 0
    truncated = False
    if method != "HEAD":
        try:
            for chunk in response.stream(64 * 1024, decode_content=True):
                cancel.check()
                _set_timeout(sock, time_left())
                size += len(chunk)
                if size > max_bytes:
                    if oversize == "error":
                        raise FetchError(
                            f"The response from {target.url} is larger than {max_bytes} bytes."
                        )
                    chunks.append(chunk[: max_bytes - (size - len(chunk))])
                    truncated = True
                    break
                chunks.append(chunk)
        except urllib3.exceptions.DecodeError as error:
            raise FetchError(f"Could not decode the response from {target.url}: {error}") from None
    return HttpResult(target.url, status, reason, response_headers, b"".join(chunks), truncated)


def _set_timeout(sock: socket.socket, seconds: float) -> None:
    # Once the body is complete http.client may already have closed the socket.
    with contextlib.suppress(OSError):
        sock.settimeout(seconds)


def _shutdown(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _close_quietly(connection: HTTPConnection) -> None:
    try:
        connection.close()
    except Exception:
        logger.debug("closing a connection failed", exc_info=True)


def _transport_error(target: Target, error: Exception | None) -> FetchError:
    if isinstance(error, FetchError):
        return error
    if isinstance(error, TimeoutError | socket.timeout | urllib3.exceptions.TimeoutError):
        return FetchError(f"Timed out requesting {target.url}.", retryable=True)
    if isinstance(error, ssl.SSLError | CertificateError | urllib3.exceptions.SSLError):
        return FetchError(f"TLS error with {target.host}: {error}")
    if isinstance(error, OSError | HTTPException | urllib3.exceptions.HTTPError):
        detail = str(error) or type(error).__name__
        return FetchError(f"Could not reach {target.url}: {detail}", retryable=True)
    return FetchError(f"Could not reach {target.url}.", retryable=True)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
