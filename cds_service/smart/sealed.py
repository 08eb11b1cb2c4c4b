"""Encrypted, signed, short-lived cookies (Fernet: AES-128-CBC + HMAC-SHA256, with a timestamp).

The trend app keeps its OAuth state (state, PKCE verifier) and, after the code exchange, the
access token in such cookies: nothing is kept in a worker's memory, so any gunicorn worker (or
replica sharing CDS_SMART_SECRET) can serve the next request, and the token never reaches the
browser's script or the logs in readable form.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

log = logging.getLogger(__name__)


class Sealer:
    def __init__(self, secret: str, purpose: str):
        digest = hashlib.sha256(f"cds-smart-app/{purpose}/".encode() + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, data: dict) -> str:
        return self._fernet.encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()

    def open(self, token: str | None, max_age_s: int) -> dict[str, Any] | None:
        """The sealed dict, or None when missing, tampered with, sealed with another secret, or too old."""
        if not token:
            return None
        try:
            data = json.loads(self._fernet.decrypt(token.encode(), ttl=max_age_s))
        except (InvalidToken, ValueError):
            return None
        return data if isinstance(data, dict) else None


def resolve_secret(configured: str, key_file: Path) -> str:
    """CDS_SMART_SECRET, or else a random secret kept in ``key_file`` (created once, 0600), so that every
    worker on this host shares it. Replicas behind one load balancer must share CDS_SMART_SECRET."""
    if configured:
        return configured
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        log.info("CDS_SMART_SECRET is empty: created a secret for the SMART app in %s", key_file)
    for _ in range(50):  # another worker may be writing it right now
        text = key_file.read_text().strip()
        if text:
            return text
        import time
        time.sleep(0.02)
    raise RuntimeError(f"{key_file} is empty")
