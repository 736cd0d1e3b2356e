"""What one strip is given and gives back: the wrapper, ``StripLimits``, ``Stripped``, errors.

The code is stripped inside the wrapper ``HEAD``/``TAIL`` and unwrapped after (``_unwrap``);
a strip ends with a ``Stripped``, whose error (if any) is a ``SyntaxError``, a
``TranspileLimitError`` or a ``TranspileError`` built here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import wasmtime

from sandbox import _ts_bindgen, _ts_sourcemap
from sandbox.result import ExecError

HEAD = "async function __(){"
TAIL = "\n}"
_HEAD_OUT = "async function __() {"  # how transform mode prints the wrapper
STRIP_ONLY, TRANSFORM = "strip-only", "transform"
SYNTAX = "SyntaxError"
LIMIT = "TranspileLimitError"
FAILED = "TranspileError"
_OUT_OF_FUEL = "type stripping used up its fuel"


@dataclass(frozen=True, slots=True)
class StripLimits:
    """What one strip may use (the code itself is bounded by ``Limits.max_code_bytes``)."""

    fuel: int = 4_000_000_000
    memory_bytes: int = 256 * 1024 * 1024
    timeout_ms: int = 2000


@dataclass(frozen=True, slots=True)
class Stripped:
    """The JavaScript to run (``code``), or why there is none (``error``), and the cost."""

    code: str
    error: ExecError | None
    mode: str
    fuel: int
    wall_ms: float
    cpu_ms: float
    source_map: str | None = None  # transform mode: printed code -> TypeScript source

    def map_positions(self, text: str) -> str:
        """``text`` (e.g. a stack) with ``<code>:LINE:COLUMN`` of the code that ran moved
        to the TypeScript source: unchanged in strip-only mode, where they already match."""
        if self.source_map is None or "<code>:" not in text:
            return text
        try:
            source_map = _ts_sourcemap.SourceMap(self.source_map)
        except (ValueError, KeyError, IndexError, AttributeError):
            return text
        return _ts_sourcemap.remap(text, source_map, len(_HEAD_OUT), len(HEAD))

    @property
    def out_of_fuel(self) -> bool:
        """Whether stripping stopped on its fuel (a retry with more fuel may succeed)."""
        return self.error is not None and self.error.message == _OUT_OF_FUEL


def _syntax_error(error: dict[str, Any], code: str) -> ExecError:
    """A SWC diagnostic as a ``SyntaxError`` at the line and column of the code."""
    line = int(error.get("startLine", 1) or 1)
    column = int(error.get("startColumn", 0) or 0) + 1
    if line == 1:
        column = max(1, column - len(HEAD))
    message = str(error.get("message", "invalid syntax"))
    lines = code.split("\n")
    if 0 < line <= len(lines) and lines[line - 1][column - 1 : column] == "@":
        message = f"decorators are not supported (QuickJS has none): {message}"
    return ExecError(SYNTAX, message, f"    at <code>:{line}:{column}")


def _unwrap(code: str, mode: str) -> str | None:
    """The function body of the stripped wrapper, or ``None`` if it is not one."""
    if mode == STRIP_ONLY:
        if code.startswith(HEAD) and code.endswith(TAIL):
            return code[len(HEAD) : len(code) - len(TAIL)]
        return None
    body = code.rstrip()
    if body.startswith(_HEAD_OUT) and body.endswith("}"):
        return body[len(_HEAD_OUT) : -1]
    return None


def _trap_error(exc: wasmtime.Trap | wasmtime.WasmtimeError) -> ExecError:
    """A trap while stripping: a limit (fuel, time, memory, nesting depth)."""
    code = exc.trap_code if isinstance(exc, wasmtime.Trap) else None
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return ExecError(LIMIT, _OUT_OF_FUEL, "")
    if code == wasmtime.TrapCode.INTERRUPT:
        return ExecError(LIMIT, "type stripping timed out", "")
    name = code.name if code is not None else "error"
    return ExecError(
        LIMIT,
        f"the type stripper stopped ({name}): the code is too deeply nested or too large",
        "",
    )


def _thrown_error(value: object, code: str) -> ExecError:
    if isinstance(value, dict) and value.get("code") in ("InvalidSyntax", "UnsupportedSyntax"):
        return _syntax_error(value, code)
    if isinstance(value, _ts_bindgen.JsError):
        return ExecError(FAILED, f"the type stripper failed: {value.message}", "")
    return ExecError(FAILED, "the type stripper failed", "")
