"""Settings of the HTTP API, on top of the domain's (``graph.settings.Settings``).

One ``ApiSettings`` is built per process (``ringwatch`` builds it once and passes it to every command and to
the app), so the CLI, the API and the batch jobs read the same values.
"""

from __future__ import annotations

from pydantic import Field

from graph.settings import Settings


class ApiSettings(Settings):
    api_keys: list[str] = Field(
        default_factory=list,
        description="entries 'role:sha256hex' (hashed at rest); roles: ingest, investigator, admin",
    )
    max_batch: int = 1000  # most applications in one POST /v1/applications:batch (413 above)
    max_body_bytes: int = 2_000_000  # largest request body but an image upload's (413 above)
    log_level: str = "INFO"  # level of the JSON logs
    scorer_refresh_accounts: int = 0  # rebuild the real-time scorer's cache once this many new accounts wait
    scorer_refresh_s: float = 0.0  # ... or once the oldest has waited this long, in seconds (0: off)
    # most decision requests waiting for the decision worker; one more is answered 503 with Retry-After
    decision_queue_max: int = Field(64, ge=1)
    # longest a decision request waits for its answer, in ms from its arrival: 503 with Retry-After once it
    # passes (not written if its pass had not started; if it had, the pass finishes and a retry is replayed)
    decision_deadline_ms: int = Field(1000, ge=1)
    # largest image uploaded to POST /v1/faces/search, in bytes (413 above)
    max_upload_bytes: int = Field(10_000_000, ge=1)
    # most pixels an uploaded image may declare; refused (422) before decoding. Pillow refuses above about
    # 179 million whatever this says
    max_image_pixels: int = Field(40_000_000, ge=1)
