"""Outbound URL allowlist: the service contacts a FHIR server only when it matches an allowlisted base.

Matching is on normalised scheme, host, port and path prefix (whole segments).
URLs with userinfo are refused. https is required, except for an allowlisted
loopback http entry (127.0.0.0/8, ::1, localhost).
"""
from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}


class UrlRefused(ValueError):
    pass


@dataclass(frozen=True)
class Base:
    scheme: str
    host: str
    port: int
    path: str  # no trailing slash; "" for the root

    def covers(self, other: "Base") -> bool:
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        return other.path == self.path or other.path.startswith(self.path + "/") or self.path == ""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_ENCODED_PATH_TRICKS = ("%2e", "%2f", "%5c", "%00")
# Control characters, space, DEL and everything past ASCII, and backslashes: one C-speed search (a query URL of
# the prefetch templates is about 1,000 characters, and a character-by-character check cost about 0.1 ms).
_REFUSED_CHAR = re.compile(r"[\x00-\x20\x7f-\U0010ffff\\]")


def _normalise_host(raw: str | None) -> str:
    """Lower-case host with one trailing dot removed; IP literals in canonical form.

    Refused: empty hosts, percent-encoded or non-ASCII hosts, IPv6 zone ids, empty labels,
    and numeric hosts that are not canonical dotted-quad IPv4 ("127.1", "0x7f.0.0.1",
    "2130706433"): resolvers accept those as IP addresses, so they could reach an address
    whose canonical spelling is not what the allowlist shows.
    """
    host = (raw or "").lower()
    if not host:
        raise UrlRefused("no host")
    if "%" in host:
        raise UrlRefused("percent-encoded host or IPv6 zone id")
    if ":" in host:  # an IPv6 literal (urlsplit removed the brackets)
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError as exc:
            raise UrlRefused("bad IPv6 literal") from exc
    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if not all(labels):
        raise UrlRefused("empty label in host")
    if _NUMERIC_LABEL.match(labels[-1]):
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            raise UrlRefused("numeric host is not a canonical IPv4 address") from None
        if str(address) != host:
            raise UrlRefused("numeric host is not a canonical IPv4 address")
        return host
    if not all(_HOST_LABEL.match(label) for label in labels):
        raise UrlRefused("bad host name")
    return host


def parse_base(url: str) -> Base:
    """Normalise a URL; raise UrlRefused for anything that is not a plain http(s) URL.

    Refused outright: non-ASCII or control characters, whitespace and backslashes anywhere,
    userinfo, ports outside 1-65535, dot segments (plain or percent-encoded), encoded
    slashes or backslashes in the path.
    """
    if not isinstance(url, str) or not url:
        raise UrlRefused("not a URL")
    if _REFUSED_CHAR.search(url):
        raise UrlRefused("control, space, backslash or non-ASCII character in URL")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UrlRefused(f"scheme {scheme or '(none)'} not allowed")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UrlRefused("userinfo in URL")
    host = _normalise_host(parts.hostname)
    try:
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("bad port") from exc
    if port is None:
        if parts.netloc.endswith(":"):
            raise UrlRefused("empty port")
        port = _DEFAULT_PORTS[scheme]
    elif not 0 < port < 65536:
        raise UrlRefused("bad port")
    path = parts.path
    lowered = path.lower()
    if any(trick in lowered for trick in _ENCODED_PATH_TRICKS):
        raise UrlRefused("percent-encoded dot, slash, backslash or NUL in path")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise UrlRefused("dot segments in path")
    return Base(scheme, host, port, path.rstrip("/"))


class Allowlist:
    def __init__(self, entries: list[str]):
        self.bases: list[Base] = []
        for entry in entries:
            try:
                base = parse_base(entry)
            except UrlRefused as exc:
                log.warning("CDS_ALLOWED_FHIR_SERVERS entry %r ignored: %s", entry, exc)
                continue
            if base.scheme == "http" and not is_loopback(base.host):
                log.warning("CDS_ALLOWED_FHIR_SERVERS entry %r ignored: http is allowed for loopback only", entry)
                continue
            self.bases.append(base)

    def check(self, url: str) -> None:
        """Raise UrlRefused unless ``url`` is under an allowlisted base."""
        target = parse_base(url)
        if not any(base.covers(target) for base in self.bases):
            host = f"[{target.host}]" if ":" in target.host else target.host
            raise UrlRefused(f"{target.scheme}://{host}:{target.port} is not an allowlisted FHIR server")

    def allows(self, url: str) -> bool:
        try:
            self.check(url)
            return True
        except UrlRefused:
            return False
