"""The data contract (DESIGN.md §2) and the graph schema (DESIGN.md §4) in one place."""

from __future__ import annotations

from dataclasses import dataclass

REQUIRED = ("application_id", "created_at", "full_name", "date_of_birth")
OPTIONAL_STR = (
    "national_id",
    "email",
    "phone",
    "address",
    "ip",
    "device_id",
    "document_number",
    "document_type",
    "document_country",
    "document_template",
    "selfie_path",
    "ring_id",
)
OPTIONAL_FLOAT01 = ("liveness_score", "document_authenticity_score")
KNOWN_COLUMNS = REQUIRED + OPTIONAL_STR + OPTIONAL_FLOAT01 + ("face_embedding", "label")


@dataclass(frozen=True)
class Signal:
    """A shared-identifier kind: the prepared column, its node label and its relationship type."""

    column: str
    label: str
    rel: str


# Order matters only for display. Every signal id stored in the graph is a keyed pseudonym.
SIGNALS: tuple[Signal, ...] = (
    Signal("device_id", "Device", "USED_DEVICE"),
    Signal("document_number", "Document", "PRESENTED"),
    Signal("document_template", "DocTemplate", "HAS_TEMPLATE"),
    Signal("phone", "Phone", "HAS_PHONE"),
    Signal("email", "Email", "HAS_EMAIL"),
    Signal("address", "Address", "LIVES_AT"),
    Signal("ip", "IP", "FROM_IP"),
    Signal("ip_prefix", "IPPrefix", "FROM_PREFIX"),
    Signal("national_id", "NationalId", "CLAIMS"),
)
SIGNAL_BY_COLUMN = {s.column: s for s in SIGNALS}
SIGNAL_BY_REL = {s.rel: s for s in SIGNALS}
SIGNAL_LABELS = tuple(s.label for s in SIGNALS)
NODE_LABELS = ("Account", *SIGNAL_LABELS, "Ring")
SAME_FACE = "SAME_FACE"
MEMBER_OF = "MEMBER_OF"
REVIEWED = "REVIEWED"
# A case-review decision is a node, (Ring)-[:REVIEWED]->(Review {id, decision, by, at, reason}): it keeps
# the full history of reviews and needs no relationship without an end node.
REVIEW_LABEL = "Review"

DECISIONS = ("approve", "review", "decline")
