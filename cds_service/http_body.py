"""Request bodies as clients send them: identity or gzip ``Content-Encoding``, never expanded past the limit.

Refused: any other content coding (415), gzip data that is broken or truncated (400), and gzip data
that would decompress to more than the body-size limit (413). Decompression stops one byte past the
limit, so a "gzip bomb" costs at most the limit in memory, whatever its ratio.
"""
from __future__ import annotations

import zlib

from .hooks.errors import HookError

GZIP = frozenset({"gzip", "x-gzip"})


def content_codings(header: str | None) -> list[str]:
    """The codings applied to the body, in order; ``identity`` (no coding) left out."""
    codings = [c.strip().lower() for c in (header or "").split(",")]
    return [c for c in codings if c and c != "identity"]


def decode_body(raw: bytes, header: str | None, limit: int) -> bytes:
    codings = content_codings(header)
    if not codings:
        return raw
    if len(codings) == 1 and codings[0] in GZIP:
        return gunzip(raw, limit)
    raise HookError(415, "not-supported",
                    f"Content-Encoding '{(header or '').strip()[:60]}' is not supported; send the body uncompressed or gzip.")


def gunzip(raw: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing only
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise HookError(400, "invalid", "The request body is not valid gzip data (Content-Encoding: gzip).") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise HookError(413, "too-costly", f"The request body is larger than {limit} bytes once decompressed.")
    if not inflater.eof:
        raise HookError(400, "invalid", "The gzip data in the request body is truncated.")
    if inflater.unused_data.strip(b"\x00"):
        raise HookError(400, "invalid", "The request body has data after the end of its gzip stream.")
    return out
