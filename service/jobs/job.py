"""An async execution as submitted (:class:`NewJob`) and as stored (:class:`Job`).

A job is one hash, ``job:{<client>}:<executionId>`` (:func:`billing.keys.job`), written and
read by :class:`service.jobs.store.JobStore`. Its fields::

    hash       the request body's hash (a repeated execution ID must repeat the body)
    entry      the ID of the ``jobs`` stream entry that runs it
    status     queued | running | succeeded | failed
    request    the request (JSON)        plan, legacy ("1"/"0")   the caller's plan
    callback   callback URL or ""        batch                    batch ID or ""
    submitted  started  finished         Unix ms (started: of the latest attempt)
    attempts   runs started              runner                   who runs it now
    response   the final response (once finished)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["TERMINAL", "Job", "NewJob", "text_field"]

TERMINAL = ("succeeded", "failed")
"""The statuses of a finished job."""


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a submission stores."""

    client_id: str
    execution_id: str
    request: dict[str, Any]
    body_hash: str
    plan: str
    legacy: bool
    callback_url: str | None = None
    batch_id: str | None = None

    def fields(self) -> list[Any]:
        """The hash fields of the queued job (names and values, alternating), without the
        body hash, entry and submission time, which the submit script writes."""
        return [
            "status", "queued",
            "request", orjson.dumps(self.request),
            "plan", self.plan,
            "legacy", "1" if self.legacy else "0",
            "attempts", 0,
            "callback", self.callback_url or "",
            "batch", self.batch_id or "",
        ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored."""

    client_id: str
    execution_id: str
    status: str
    request: dict[str, Any]
    plan: str
    legacy: bool
    callback_url: str | None
    batch_id: str | None
    submitted_ms: int
    started_ms: int | None
    finished_ms: int | None
    attempts: int
    response: bytes | None
    entry_id: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the job has its final response."""
        return self.status in TERMINAL

    @classmethod
    def from_hash(cls, client_id: str, execution_id: str, raw: dict[bytes, bytes]) -> Job | None:
        """The job stored as the hash ``raw`` (HGETALL), or None if it holds no job."""
        if not raw or b"status" not in raw:
            return None
        return cls(
            client_id=client_id,
            execution_id=execution_id,
            status=raw[b"status"].decode(),
            request=orjson.loads(raw.get(b"request", b"{}")),
            plan=raw.get(b"plan", b"").decode(),
            legacy=raw.get(b"legacy") == b"1",
            callback_url=text_field(raw.get(b"callback")),
            batch_id=text_field(raw.get(b"batch")),
            submitted_ms=int(raw.get(b"submitted", b"0")),
            started_ms=_int(raw.get(b"started")),
            finished_ms=_int(raw.get(b"finished")),
            attempts=int(raw.get(b"attempts", b"0")),
            response=raw.get(b"response"),
            entry_id=text_field(raw.get(b"entry")),
        )


def text_field(value: bytes | None) -> str | None:
    """A stored text field, None when absent or empty (``""`` stands for "none")."""
    return value.decode() if value else None


def _int(value: bytes | None) -> int | None:
    return int(value) if value is not None else None
