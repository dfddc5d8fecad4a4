"""Structured JSON logs without PII.

Every record is one JSON object per line. Request logs carry the route template (``/v1/accounts/{account_id}``),
never the concrete path, query string or body, because ids and bodies can identify people. Exceptions are
logged as their type and stack frames only: exception messages can quote data.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            out["error_type"] = exc_type.__name__
            out["stack"] = "".join(traceback.format_tb(tb))
        return json.dumps(out, default=str)


def configure(level: str = "INFO") -> None:
    """Route our loggers and uvicorn's through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("ringwatch", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    # uvicorn's access log prints raw paths and query strings; our middleware logs route templates instead
    logging.getLogger("uvicorn.access").disabled = True
