"""Audit trail of investigator reads and case reviews, as JSON lines under the data directory.

It records who (key id, role), what (action, resource) and when, and never request bodies: a review reason is
the investigator's free text and stays on the graph, not here.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from api.http.auth import Principal


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", encoding="utf-8")

    def record(self, principal: Principal, action: str, resource: str, **fields: object) -> None:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "key_id": principal.key_id,
            "role": principal.role.value,
            "action": action,
            "resource": resource,
            **fields,
        }
        line = json.dumps(entry, default=str) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()
