"""Structured JSON logs: one object per line, one line per request.

Only the fields a request log is given are written; code, context and keys are never passed
to it. Other records (start-up, warnings) use the same formatter.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["JsonFormatter", "configure_logging", "log_request"]

_request_log = logging.getLogger("codexec.request")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object, with its ``extra`` fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def log_request(
    *,
    request_id: str,
    method: str,
    route: str,
    status: int,
    duration_ms: float,
    client: str | None = None,
    outcome: str | None = None,
    fuel: int | None = None,
    cpu_ms: float | None = None,
    wall_ms: float | None = None,
) -> None:
    """The one log line of a request."""
    fields: dict[str, Any] = {
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(duration_ms, 3),
    }
    for key, value in (
        ("client", client),
        ("outcome", outcome),
        ("fuel", fuel),
        ("cpu_ms", None if cpu_ms is None else round(cpu_ms, 3)),
        ("wall_ms", None if wall_ms is None else round(wall_ms, 3)),
    ):
        if value is not None:
            fields[key] = value
    _request_log.info("request", extra=fields)
