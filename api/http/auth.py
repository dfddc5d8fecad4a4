"""API keys with roles.

Keys live in configuration only as SHA-256 hashes (``role:sha256hex``), so a leaked config file does not leak
working keys. A key is looked up by its hash; ``admin`` implies every role. Missing or unknown keys are 401,
known keys without the role are 403, so callers can tell "who are you" from "not allowed".
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from api.http.errors import ApiError


class Role(StrEnum):
    ingest = "ingest"
    investigator = "investigator"
    admin = "admin"


KEY_HEADER = "X-API-Key"
# declared so OpenAPI shows the scheme; `require` also accepts the key as a bearer token
api_key_scheme = APIKeyHeader(name=KEY_HEADER, auto_error=False)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A random key with a recognisable prefix (helps secret scanners)."""
    return "rw_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who called: the role and a short, non-secret key id for audit and logs."""

    role: Role
    key_id: str

    def has(self, role: Role) -> bool:
        return self.role is Role.admin or self.role is role


class KeyRing:
    """Hash → role, parsed once from ``Settings.api_keys``."""

    def __init__(self, entries: list[str]):
        self._roles: dict[str, Role] = {}
        for entry in entries:
            role, sep, digest = entry.strip().partition(":")
            digest = digest.strip().lower()
            if not sep or role not in Role.__members__ or len(digest) != 64:
                raise ValueError("api_keys entries must look like 'role:<64 hex chars>'")
            int(digest, 16)  # raises on non-hex
            self._roles[digest] = Role(role)

    def __len__(self) -> int:
        return len(self._roles)

    def identify(self, key: str | None) -> Principal | None:
        if not key:
            return None
        digest = hash_key(key)
        role = self._roles.get(digest)
        return Principal(role=role, key_id=digest[:12]) if role else None


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require(role: Role):
    """A dependency that admits callers holding ``role`` (or admin) and records who they are."""

    def check(request: Request, header_key: str | None = Security(api_key_scheme)) -> Principal:
        keyring: KeyRing = request.app.state.ctx.keyring
        principal = keyring.identify(header_key or _bearer(request))
        if principal is None:
            raise ApiError(
                401,
                "unauthenticated",
                f"missing or unknown API key (send it in the {KEY_HEADER} header)",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        if not principal.has(role):
            raise ApiError(403, "forbidden", f"this key's role lacks '{role.value}'")
        request.state.principal = principal
        return principal

    return check
