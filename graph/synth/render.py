"""Integer keys to the strings of the data contract, vectorised with numpy and Arrow compute.

A key always renders to the same canonical value (so sharing survives chunking), through bijections
(affine maps modulo the size of the value space, or the splitmix64 finaliser), so different keys never
collide by accident. On top, each row picks an innocent human format (phone punctuation, street-suffix
abbreviations, letter case, e-mail plus-tags, SSN dashes) that the normaliser folds back together.
"""

from __future__ import annotations

import binascii
from math import gcd

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graph.synth import vocab
from graph.synth.plan import V6_BASE, Plan

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_OCTETS = np.array([o for o in range(11, 224) if o not in (100, 127, 169, 172, 192)][:200], dtype=np.int64)
_SSN_AREAS = np.array([a for a in range(1, 900) if a != 666], dtype=np.int64)
_NULL = pa.scalar(None, pa.string())


def mix64(key: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 finaliser: a bijection on 64-bit integers, so distinct keys stay distinct."""
    with np.errstate(over="ignore"):
        z = key.astype(np.uint64) + np.uint64(salt & 0xFFFFFFFFFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def scramble(key: np.ndarray, space: int, salt: int) -> np.ndarray:
    """An affine permutation of [0, space): unique outputs for keys below ``space``, no visible order."""
    a = 2_654_435_761 % space
    while gcd(a, space) != 1:
        a += 1
    b = (salt * 40_503) % space
    return (key.astype(np.int64) % space * a + b) % space


def hex_strings(values: np.ndarray, width: int = 16) -> pa.Array:
    """Lower-case hex of uint64s, ``width`` last digits, without a Python loop."""
    raw = binascii.hexlify(values.astype(">u8").tobytes())
    n = len(values)
    offsets = np.arange(n + 1, dtype=np.int32) * 16
    arr = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(raw)])
    return arr if width == 16 else pc.utf8_slice_codeunits(arr, 16 - width)


def digits(values: np.ndarray, width: int = 0) -> pa.Array:
    s = pa.array(values.astype(np.int64)).cast(pa.string())
    return pc.utf8_lpad(s, width, "0") if width else s


def words(vocabulary: tuple[str, ...] | list[str], index: np.ndarray) -> pa.Array:
    return pa.array(vocabulary, pa.string()).take(pa.array(index.astype(np.int64)))


def cat(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def choose(index: np.ndarray, *variants: pa.Array) -> pa.Array:
    return pc.choose(pa.array(index.astype(np.int8)), *variants)


def null_where(mask: np.ndarray, arr: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), _NULL, arr) if mask.any() else arr


class Renderer:
    """Renders plan rows into contract columns. ``salt`` varies the strings between seeds."""

    def __init__(self, salt: int) -> None:
        self.salt = salt

    def application_id(self, row: np.ndarray) -> pa.Array:
        return cat("app-", hex_strings(mix64(row, self.salt + 1)))

    def created_at(self, created: np.ndarray) -> pa.Array:
        iso = np.datetime_as_string(created.astype("datetime64[s]"), unit="s")
        return cat(pa.array(iso), "Z")

    def date_of_birth(self, dob: np.ndarray) -> pa.Array:
        return pa.array(np.datetime_as_string(dob.astype("datetime64[D]")))

    def full_name(self, first: np.ndarray, last: np.ndarray, rng: np.random.Generator) -> pa.Array:
        name = cat(words(vocab.FIRST_NAMES, first), " ", words(vocab.LAST_NAMES, last))
        upper = rng.random(len(first)) < 0.03
        return choose(upper.astype(np.int8), name, pc.utf8_upper(name))

    def national_id(self, key: np.ndarray, rng: np.random.Generator) -> pa.Array:
        v = scramble(np.maximum(key, 0), len(_SSN_AREAS) * 99 * 9999, self.salt + 2)
        area = digits(_SSN_AREAS[v // (99 * 9999)], 3)
        group = digits(1 + (v // 9999) % 99, 2)
        serial = digits(1 + v % 9999, 4)
        style = (rng.random(len(key)) < 0.25).astype(np.int8)
        out = choose(style, cat(area, "-", group, "-", serial), cat(area, group, serial))
        return null_where(key < 0, out)

    def email(
        self, key: np.ndarray, first: np.ndarray, last: np.ndarray, rng: np.random.Generator
    ) -> pa.Array:
        k = np.maximum(key, 0)
        h = mix64(k, self.salt + 3)
        f = pc.utf8_lower(words(vocab.FIRST_NAMES, first))
        la = pc.utf8_lower(words(vocab.LAST_NAMES, last))
        num = digits(scramble(k, 9_999_991, self.salt + 4))
        local = choose(
            (h % np.uint64(5)).astype(np.int8),
            cat(f, ".", la, num),
            cat(f, la, num),
            cat(pc.utf8_slice_codeunits(f, 0, 1), la, num),
            cat(f, "_", la, num),
            cat(la, f, num),
        )
        w = 1.0 / np.arange(1, len(vocab.EMAIL_DOMAINS) + 1) ** 1.1
        cdf = np.cumsum(w) / w.sum()
        u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        domain = words(vocab.EMAIL_DOMAINS, np.minimum(np.searchsorted(cdf, u), len(cdf) - 1))
        plain = cat(local, "@", domain)
        r = rng.random(len(key))
        style = np.where(r < 0.03, 1, np.where(r < 0.06, 2, 0)).astype(np.int8)
        out = choose(style, plain, pc.utf8_upper(plain), cat(local, "+signup@", domain))
        return null_where(key < 0, out)

    def phone(self, key: np.ndarray, rng: np.random.Generator) -> pa.Array:
        v = scramble(np.maximum(key, 0), len(vocab.AREA_CODES) * 800 * 10_000, self.salt + 5)
        area = words(vocab.AREA_CODES, v // 8_000_000)
        exch = digits(200 + (v // 10_000) % 800, 3)
        line = digits(v % 10_000, 4)
        out = choose(
            rng.integers(0, 6, len(key)).astype(np.int8),
            cat("(", area, ") ", exch, "-", line),
            cat(area, "-", exch, "-", line),
            cat(area, ".", exch, ".", line),
            cat("+1", area, exch, line),
            cat("1 ", area, " ", exch, " ", line),
            cat(area, exch, line),
        )
        return null_where(key < 0, out)

    def address(self, key: np.ndarray, rng: np.random.Generator) -> pa.Array:
        n_st, n_sfx, n_city = len(vocab.STREETS), len(vocab.STREET_SUFFIXES), len(vocab.CITIES)
        k = np.maximum(key, 0)
        v = scramble(k, 9999 * n_st * n_sfx * n_city, self.salt + 6)
        h = mix64(k, self.salt + 7)
        number = digits(1 + v % 9999)
        street = words(vocab.STREETS, (v // 9999) % n_st)
        sfx = (v // (9999 * n_st)) % n_sfx
        city = (v // (9999 * n_st * n_sfx)) % n_city
        full = words([s[0] for s in vocab.STREET_SUFFIXES], sfx)
        short1 = words([s[1][0] for s in vocab.STREET_SUFFIXES], sfx)
        short2 = words([s[1][-1] for s in vocab.STREET_SUFFIXES], sfx)
        suffix = choose(rng.integers(0, 3, len(key)).astype(np.int8), full, short1, short2)
        has_apt = (h % np.uint64(10)) < np.uint64(3)
        apt = choose(
            has_apt.astype(np.int8),
            pa.array([""] * len(key)),
            cat(" Apt ", digits(1 + (h >> np.uint64(8)) % np.uint64(60))),
        )
        zip5 = cat(
            words([c[2] for c in vocab.CITIES], city), digits((h >> np.uint64(20)) % np.uint64(100), 2)
        )
        line = cat(
            number, " ", street, " ", suffix, apt, ", ",
            words([c[0] for c in vocab.CITIES], city), ", ", words([c[1] for c in vocab.CITIES], city), " ", zip5,
        )  # fmt: skip
        upper = (rng.random(len(key)) < 0.04).astype(np.int8)
        return null_where(key < 0, choose(upper, line, pc.utf8_upper(line)))

    def ip(self, prefix: np.ndarray, host: np.ndarray) -> pa.Array:
        v6 = prefix >= V6_BASE
        v = scramble(np.where(v6, 0, prefix), len(_OCTETS) << 16, self.salt + 8)
        v4 = cat(
            digits(_OCTETS[v >> 16]), ".", digits((v >> 8) & 255), ".", digits(v & 255), ".", digits(host)
        )
        if not v6.any():
            return v4
        out = np.asarray(v4.to_pylist(), dtype=object)
        p6 = mix64(prefix[v6] - V6_BASE, self.salt + 9)
        h6 = mix64(host[v6], self.salt + 10)
        out[v6] = [
            f"2a0{int(p) >> 60 & 7:x}:{int(p) >> 32 & 0xFFFF:x}:{int(p) >> 16 & 0xFFFF:x}:{int(p) & 0xFFFF:x}:"
            f"{int(q) >> 48 & 0xFFFF:x}:{int(q) >> 32 & 0xFFFF:x}:{int(q) >> 16 & 0xFFFF:x}:{int(q) & 0xFFFF:x}"
            for p, q in zip(p6, h6, strict=True)
        ]
        return pa.array(out, pa.string())

    def device_id(self, key: np.ndarray) -> pa.Array:
        k = np.maximum(key, 0)
        a = hex_strings(mix64(k, self.salt + 11))
        b = hex_strings(mix64(k, self.salt + 12))
        s = pc.utf8_slice_codeunits
        uuid = pc.utf8_upper(
            cat(s(a, 0, 8), "-", s(a, 8, 12), "-4", s(a, 13, 16), "-", s(b, 0, 4), "-", s(b, 4, 16))
        )
        ios = (mix64(k, self.salt + 13) % np.uint64(5)) < np.uint64(2)
        return null_where(key < 0, choose(ios.astype(np.int8), a, uuid))

    def document_number(self, key: np.ndarray, doc_type: np.ndarray) -> pa.Array:
        k = np.maximum(key, 0)
        v = scramble(k, 26 * 26 * 10**7, self.salt + 14)
        letters = [chr(65 + i) for i in range(26)]
        l1, l2 = words(letters, v % 26), words(letters, (v // 26) % 26)
        rest = v // 676
        out = choose(
            doc_type.astype(np.int8),
            cat(l1, digits(rest % 10**8, 8)),  # DL
            digits(rest % 10**9, 9),  # PASSPORT
            cat(l1, l2, digits(rest % 10**7, 7)),  # ID
        )
        return null_where(key < 0, out)

    def template(self, key: np.ndarray) -> pa.Array:
        return null_where(key < 0, cat("tpl-", hex_strings(mix64(np.maximum(key, 0), self.salt + 15))))

    def columns(self, plan: Plan, rows: np.ndarray, rng: np.random.Generator) -> dict[str, pa.Array]:
        """Every contract column except the face embedding, for one chunk of plan rows."""
        return {
            "application_id": self.application_id(rows),
            "created_at": self.created_at(plan.created),
            "full_name": self.full_name(plan.first, plan.last, rng),
            "date_of_birth": self.date_of_birth(plan.dob),
            "national_id": self.national_id(plan.national_id, rng),
            "email": self.email(plan.email, plan.email_first, plan.email_last, rng),
            "phone": self.phone(plan.phone, rng),
            "address": self.address(plan.address, rng),
            "ip": self.ip(plan.ip_prefix, plan.ip_host),
            "device_id": self.device_id(plan.device),
            "document_number": self.document_number(plan.document, plan.doc_type),
            "document_type": words(vocab.DOC_TYPES, plan.doc_type),
            "document_country": words(vocab.DOC_COUNTRIES, plan.doc_country),
            "document_template": self.template(plan.template),
        }
