"""Outbound URL allowlist: the service contacts a FHIR server only when it matches an allowlisted base.

Matching is on normalised scheme, host, port and path prefix (whole segments).
URLs with userinfo are refused. https is required, except for an allowlisted
loopback http entry (127.0.0.0/8, ::1, localhost).
"""
from __future__ import annotations

import ipaddress
import logging
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


def parse_base(url: str) -> Base:
    """Normalise a URL; raise UrlRefused for anything that is not a plain http(s) URL."""
    if not isinstance(url, str) or not url or any(c in url for c in "\r\n\t\\ "):
        raise UrlRefused("not a URL")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UrlRefused(f"scheme {scheme or '(none)'} not allowed")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UrlRefused("userinfo in URL")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise UrlRefused("no host")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UrlRefused("bad host") from exc
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise UrlRefused("bad port") from exc
    path = parts.path.rstrip("/")
    if "/../" in path + "/" or "/./" in path + "/":
        raise UrlRefused("dot segments in path")
    return Base(scheme, host, port, path)


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
            raise UrlRefused(f"{target.scheme}://{target.host}:{target.port} is not an allowlisted FHIR server")

    def allows(self, url: str) -> bool:
        try:
            self.check(url)
            return True
        except UrlRefused:
            return False
