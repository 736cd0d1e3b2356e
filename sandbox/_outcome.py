"""Turn what a run left behind (the packed answer of ``finish()`` or a trap) into a ``Result``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import wasmtime

from sandbox import limits
from sandbox.limits import Limits
from sandbox.result import ExecError, Result, js_error, trap_error

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_FIRST_LINE = re.compile(r"<code>:1:(\d+)")
_OK_META = '[1,"","","",false,false]'
# finish()'s answer for a success without console output starts with this (then the JSON)
OK_PLAIN = _OK_META + "\n[]\n"
_NEVER_SETTLED = ExecError("Error", "the code's promise never settled", "")


def _clean(text: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", text)


def _clean_stack(stack: str, prefix_len: int) -> str:
    """Drop the prelude's and the wrapper's frames; make line-1 columns relative to the code."""
    kept = [
        _FIRST_LINE.sub(lambda m: f"<code>:1:{max(1, int(m.group(1)) - prefix_len)}", line)
        for line in stack.splitlines()
        if "<prelude>" not in line and not line.strip().startswith("at <eval> (<code>")
    ]
    return "\n".join(kept)


@dataclass(slots=True)
class Outcome:
    """The raw end of a run: the packed answer (``None`` if none) or the trap it ended in."""

    packed: str | None = None
    trap: wasmtime.Trap | wasmtime.WasmtimeError | None = None


@dataclass(frozen=True, slots=True)
class Measured:
    """What the host measured around a run."""

    fuel: int
    cpu_ms: float
    wall_ms: float
    memory: int
    seed: int
    rebuilt: bool
    read_clock: bool = False
    read_random: bool = False


def _output(lines: list[str], lim: Limits) -> tuple[tuple[str, ...], bool]:
    kept: list[str] = []
    total = 0
    for line in lines:
        clean = _clean(line)
        total += len(clean.encode("utf-8"))
        if len(kept) >= lim.max_output_lines or total > lim.max_output_bytes:
            return tuple(kept), True
        kept.append(clean)
    return tuple(kept), False


def build_result(
    outcome: Outcome, guard: bool, lim: Limits, m: Measured, prefix_len: int
) -> Result:
    """The ``Result`` of any run (see ``sandbox.result`` for the classification rules)."""
    output: tuple[str, ...] = ()
    error: ExecError | None = None
    result_json = "null"
    meta: list[object] = [0, "", "", "", False, False]
    if outcome.packed is not None:
        meta_text, lines_text, result_json = outcome.packed.split("\n", 2)
        meta = json.loads(meta_text) if meta_text != _OK_META else [1, "", "", "", False, False]
        if lines_text != "[]":
            output, cut = _output(json.loads(lines_text), lim)
            meta[5] = bool(meta[5]) or cut
    state = meta[0]
    if outcome.trap is not None:
        error = trap_error(outcome.trap, guard)
    elif outcome.packed is None:
        error = ExecError(limits.MEMORY, "memory limit exceeded", "")
    elif meta[5]:
        error = ExecError(limits.OUTPUT, "console output exceeded its limit", "")
    elif state == 2:
        error = js_error(
            _clean(str(meta[1])),
            _clean(str(meta[2])),
            _clean_stack(_clean(str(meta[3])), prefix_len),
            bool(meta[4]),
            m.memory,
            lim.memory_bytes,
        )
    elif state == 0:
        error = _NEVER_SETTLED
    elif state == 3 or len(result_json.encode("utf-8", errors="replace")) > lim.max_result_bytes:
        error = ExecError(limits.RESULT, "the returned value's JSON exceeds its limit", "")
    return _result(error, "null" if error is not None else result_json, output, m)


def _result(
    error: ExecError | None, result_json: str, output: tuple[str, ...], m: Measured
) -> Result:
    return Result(
        ok=error is None,
        result_json=result_json,
        output=output,
        error=error,
        fuel=m.fuel,
        cpu_ms=m.cpu_ms,
        wall_ms=m.wall_ms,
        peak_memory=m.memory,
        random_seed=m.seed,
        rebuilt=m.rebuilt,
        read_clock=m.read_clock,
        read_random=m.read_random,
    )
