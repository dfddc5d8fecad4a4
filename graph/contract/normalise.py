"""Canonical forms for identifiers, so that one phone written three ways is one signal.

Each function takes a raw string and returns the canonical string, or raises ``ValueError`` with a reason
that is safe to show (it never repeats the raw value, which may be PII).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from datetime import UTC, date, datetime

import phonenumbers

_SPACE = re.compile(r"\s+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ADDR_PUNCT = re.compile(r"[.,;:#'\"()]")
_NAME_PUNCT = re.compile(r"[^\w\s'-]")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# dots in the local part are ignored by these providers, so they do not distinguish mailboxes
_DOTLESS_DOMAINS = {"gmail.com", "googlemail.com"}
_ADDRESS_WORDS = {
    "street": "st",
    "str": "st",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "square": "sq",
    "terrace": "ter",
    "highway": "hwy",
    "parkway": "pkwy",
    "apartment": "apt",
    "suite": "ste",
    "unit": "unit",
    "floor": "fl",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "number": "no",
}


def _fold(value: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", value)).strip()


def email(value: str) -> str:
    v = _fold(value).lower()
    if not _EMAIL.match(v):
        raise ValueError("not an email address")
    local, domain = v.rsplit("@", 1)
    local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    if not local:
        raise ValueError("empty email local part")
    return f"{local}@{domain}"


def phone(value: str, default_region: str = "US") -> str:
    try:
        num = phonenumbers.parse(_fold(value), default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_possible_number(num):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def address(value: str) -> str:
    v = _ADDR_PUNCT.sub(" ", _fold(value).casefold())
    words = [_ADDRESS_WORDS.get(w, w) for w in v.split()]
    if not words:
        raise ValueError("empty address")
    return " ".join(words)


def ip(value: str) -> tuple[str, str]:
    """Returns the address and its network prefix (/24 for IPv4, /64 for IPv6)."""
    try:
        addr = ipaddress.ip_address(_fold(value))
    except ValueError as exc:
        raise ValueError("not an IPv4 or IPv6 address") from exc
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = 24 if addr.version == 4 else 64
    net = ipaddress.ip_network(f"{addr}/{bits}", strict=False)
    return str(addr), str(net)


def name(value: str) -> str:
    v = unicodedata.normalize("NFKD", _fold(value).casefold())
    v = "".join(c for c in v if not unicodedata.combining(c))
    v = _SPACE.sub(" ", _NAME_PUNCT.sub(" ", v)).strip()
    if not v:
        raise ValueError("empty name")
    return v


def date_of_birth(value: str, today: date | None = None) -> date:
    v = _fold(value)
    if not _DATE.match(v):
        raise ValueError("date must be YYYY-MM-DD")
    try:
        d = date.fromisoformat(v)
    except ValueError as exc:
        raise ValueError("not a calendar date") from exc
    if d.year < 1900 or d > (today or date.today()):
        raise ValueError("date of birth out of range")
    return d


# created_at, once converted to UTC, must fall in the years a datetime holds (0001 to 9999): an offset can
# push a timestamp written in range out of it (0001-01-01T00:00:00+14:00 is in year 0 in UTC)
TIMESTAMP_OUT_OF_RANGE = "created_at is out of range once converted to UTC (years 0001 to 9999)"


def utc_timestamp(value: str) -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime; without an offset it is taken as UTC."""
    try:
        ts = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("created_at is not an ISO-8601 timestamp") from exc
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    try:
        return ts.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(TIMESTAMP_OUT_OF_RANGE) from exc


def iso_utc(ts: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` for a UTC datetime, the year always in four digits (``strftime("%Y")``
    drops the zeros of years before 1000 on glibc, pandas keeps them)."""
    return ts.isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


def token(value: str) -> str:
    """Opaque identifiers (device ids, document numbers, national ids): case and separators do not matter."""
    v = re.sub(r"[\s\-./]", "", _fold(value)).upper()
    if not v:
        raise ValueError("empty identifier")
    return v
