"""Keyed pseudonyms for PII.

A keyed HMAC rather than a plain hash: national ids and phone numbers have small value spaces, so an
unkeyed hash could be reversed by enumeration. The raw values never leave this module's callers' memory;
only pseudonyms reach the graph, the index and the logs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from graph.settings import Settings

KEY_FILE = "pseudonym.key"


class MissingKeyError(RuntimeError):
    pass


class Pseudonymiser:
    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("pseudonymisation key must be at least 16 bytes")
        self._key = key

    def pseudonym(self, kind: str, value: str) -> str:
        """The kind is part of the message, so equal values of different kinds do not collide."""
        msg = f"{kind}\x1f{value}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:32]

    def __repr__(self) -> str:
        return "Pseudonymiser(key=***)"


def load_key(settings: Settings) -> bytes:
    """The configured key; in demo mode a generated one kept (0600) under the data directory."""
    if settings.pseudonym_key is not None:
        return settings.pseudonym_key.get_secret_value().encode()
    path = Path(settings.data_dir) / KEY_FILE
    if path.exists():
        if not settings.demo:
            raise MissingKeyError(
                f"RINGWATCH_PSEUDONYM_KEY is not set; a demo key exists at {path} but is only used with "
                "RINGWATCH_DEMO=true"
            )
        return path.read_bytes().strip()
    if not settings.demo:
        raise MissingKeyError(
            "RINGWATCH_PSEUDONYM_KEY is not set. Set it to a long random secret "
            '(python -c "import secrets; print(secrets.token_hex(32))"), or set RINGWATCH_DEMO=true to '
            "generate a local demo key."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key
