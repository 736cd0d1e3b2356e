"""Sandboxed JavaScript: QuickJS-NG (WASI reactor) in wasmtime, a pristine state per run.

Knows nothing of HTTP, Redis or money: code, a JSON context and ``Limits`` in, a ``Result``
with its measurements out. Nothing is built at import time; ``Sandbox()`` does the work.
"""

from sandbox.errors import (
    CodeTooLarge,
    EngineUnavailable,
    InvalidContext,
    SandboxClosed,
    SandboxError,
)
from sandbox.limits import Limits
from sandbox.result import EngineInfo, ExecError, Result, SandboxStats
from sandbox.runner import Sandbox

__all__ = [
    "CodeTooLarge",
    "EngineInfo",
    "EngineUnavailable",
    "ExecError",
    "InvalidContext",
    "Limits",
    "Result",
    "Sandbox",
    "SandboxClosed",
    "SandboxError",
    "SandboxStats",
]
