"""Exceptions raised by :mod:`billing`.

Tree::

    BillingError
    ├── StoreUnavailable        Redis cannot be reached and the spool cannot take the record
    ├── IdempotencyConflict     same execution ID, different request body
    ├── QuotaExceeded           the client's monthly budget is spent
    ├── RateLimitExceeded       the client's plan allows no more requests right now
    ├── UnknownPlan             a plan name that is not configured
    ├── FormatError             a report/KV/plan file that cannot be read
    ├── CorrectionRefused       a ledger void or credit that cannot be made
    ├── InvalidReceipt          a receipt whose signature or arithmetic does not hold
    └── InvalidKey              a receipt signing or public key that cannot be read
"""

from __future__ import annotations

__all__ = [
    "BillingError",
    "CorrectionRefused",
    "FormatError",
    "IdempotencyConflict",
    "InvalidKey",
    "InvalidReceipt",
    "QuotaExceeded",
    "RateLimitExceeded",
    "StoreUnavailable",
    "UnknownPlan",
]


class BillingError(Exception):
    """Base class of every billing error."""


class StoreUnavailable(BillingError):
    """The usage store (Redis) is unreachable and the record could not be kept."""


class IdempotencyConflict(BillingError):
    """An execution ID was reused with a different request body."""


class QuotaExceeded(BillingError):
    """The client's budget for the month is exhausted."""

    def __init__(self, message: str, remaining: str = "0") -> None:
        super().__init__(message)
        self.remaining = remaining


class RateLimitExceeded(BillingError):
    """The client's token bucket is empty; ``retry_after`` is the wait in seconds.

    ``limit`` and ``window_s`` describe the bucket (its size, and seconds to fill it) when
    known, for the ``RateLimit-Policy`` header.
    """

    def __init__(
        self, retry_after: float, *, limit: int | None = None, window_s: int | None = None
    ) -> None:
        super().__init__(f"rate limit exceeded; retry in {retry_after:.3f} s")
        self.retry_after = retry_after
        self.limit = limit
        self.window_s = window_s


class UnknownPlan(BillingError):
    """A plan name that the plans file does not define."""


class FormatError(BillingError):
    """Input in a billing file format (KV bulk, plans, CSV) is malformed."""


class CorrectionRefused(BillingError):
    """A void or credit that cannot be made (unknown execution, already voided, too large)."""


class InvalidReceipt(BillingError):
    """A receipt whose signature or arithmetic does not hold."""


class InvalidKey(BillingError):
    """A signing or public key that cannot be read."""
