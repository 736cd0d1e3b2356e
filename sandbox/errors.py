"""Exceptions raised by ``sandbox``.

Limits hit *inside* a run (timeout, fuel, memory, output, result size) and errors thrown by
the JavaScript code are not exceptions: they come back as ``Result.error``. The exceptions
below are for problems with the engine or with the input itself::

    SandboxError
    ├── EngineUnavailable    the wasm file is missing or altered, or the module cache failed
    ├── CodeTooLarge         ``code`` is over ``Limits.max_code_bytes`` (nothing ran)
    ├── InvalidContext       ``context_json`` is not a JSON object (nothing ran)
    └── SandboxClosed        ``run`` was called after ``close``
"""

from __future__ import annotations


class SandboxError(Exception):
    """Base class of every exception raised by ``sandbox``."""


class EngineUnavailable(SandboxError):
    """The QuickJS module cannot be loaded (missing, wrong sha256, unusable cache)."""


class CodeTooLarge(SandboxError, ValueError):
    """The code is larger than ``Limits.max_code_bytes``; it was not run."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"code is {size} bytes, the limit is {limit} bytes")
        self.size = size
        self.limit = limit


class InvalidContext(SandboxError, ValueError):
    """``context_json`` is not the JSON text of an object; nothing was run."""


class SandboxClosed(SandboxError, RuntimeError):
    """The sandbox was closed."""
