"""What a run returns, and how engine outcomes map to error types.

Classification rules (documented for the service and billing):

* traps, by ``Trap.trap_code``: ``INTERRUPT`` -> ``TimeoutError``; ``OUT_OF_FUEL`` ->
  ``FuelExhaustedError``; the stack guard's ``UNREACHABLE`` (its overflow flag set) and wasm
  ``STACK_OVERFLOW`` -> ``RangeError: Maximum call stack size exceeded``; anything else ->
  ``InternalError`` (an engine fault: that instance is discarded, while after the traps above it
  is restored in place);
* ``console`` output over ``max_output_lines``/``max_output_bytes`` -> ``OutputLimitError``
  (the lines up to the cap are kept), even if the code caught the error and went on;
* a thrown ``InternalError: out of memory`` (QuickJS only raises it when ``malloc`` fails,
  i.e. a ``memory.grow`` was refused by the store limit) -> ``MemoryLimitError``; a thrown
  ``null`` (what QuickJS throws when it cannot even allocate the error) counts as
  ``MemoryLimitError`` only when memory ended within 1/8 of the cap of it, else it is an
  ``Error`` with message ``null``;
* a returned value whose JSON is over ``max_result_bytes`` (UTF-8) -> ``ResultLimitError``;
* JSON of the returned value: ``undefined``, functions and symbols -> ``null`` (as
  ``JSON.stringify`` does, also inside objects they are dropped); BigInt -> its decimal string;
  a cycle -> the ``TypeError`` that ``JSON.stringify`` throws;
* a promise that never settles (``await new Promise(() => {})``) -> ``Error``.
"""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from sandbox import limits

STACK_OVERFLOW_MESSAGE = "Maximum call stack size exceeded"


@dataclass(frozen=True, slots=True)
class ExecError:
    """Why a run did not return normally."""

    type: str
    message: str
    stack: str


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome and measurements of one run."""

    ok: bool
    result_json: str
    output: tuple[str, ...]
    error: ExecError | None
    fuel: int
    cpu_ms: float
    wall_ms: float
    peak_memory: int
    random_seed: int
    rebuilt: bool
    read_clock: bool = False  # the code read Date/performance clocks (a re-run may differ)
    read_random: bool = False  # the code drew on the run's host random key (crypto.*)


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """Which engine build a Sandbox runs."""

    wasm_sha256: str
    wasmtime_version: str
    fast_path: bool


@dataclass(frozen=True, slots=True)
class SandboxStats:
    """Counters for monitoring (e.g. Prometheus gauges and counters)."""

    runs: int
    rebuilds: int
    instances: int
    in_use: int


def trap_error(trap: wasmtime.Trap | wasmtime.WasmtimeError, guard_tripped: bool) -> ExecError:
    """The error reported for a run that ended in a trap."""
    code = trap.trap_code if isinstance(trap, wasmtime.Trap) else None
    if code == wasmtime.TrapCode.INTERRUPT:
        return ExecError(limits.TIMEOUT, "execution timed out", "")
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return ExecError(limits.FUEL, "execution used up its fuel (CPU budget)", "")
    if guard_tripped or code == wasmtime.TrapCode.STACK_OVERFLOW:
        return ExecError("RangeError", STACK_OVERFLOW_MESSAGE, "")
    name = code.name if code is not None else "error"
    return ExecError("InternalError", f"engine fault ({name})", "")


def js_error(
    name: str, message: str, stack: str, thrown_null: bool, memory: int, memory_cap: int
) -> ExecError:
    """The error reported for a value thrown by the code (or its promise's rejection)."""
    if name == "InternalError" and message == "out of memory":
        return ExecError(limits.MEMORY, "memory limit exceeded", stack)
    if thrown_null and memory >= memory_cap - memory_cap // 8:
        return ExecError(limits.MEMORY, "memory limit exceeded", "")
    return ExecError(name, message, stack)


def restorable_after(trap: wasmtime.Trap | wasmtime.WasmtimeError, guard: bool) -> bool:
    """Whether an instance that trapped this way is restored in place rather than rebuilt.

    A run stopped by its fuel, its deadline, wasmtime's stack limit or the stack guard
    trapped where a limit was checked, not because of a fault. The instance's whole state is
    its linear memory (restored by ``Instance._reset``, the stack part from the lowest stack
    pointer the guard saw), the stack pointer and the guard's flags (set back by
    ``Instance.run``): the module sets no other global and changes no table
    (``tests/unit/test_sandbox_state_audit.py``). Any other trap is an engine fault, and that
    instance is discarded."""
    if not isinstance(trap, wasmtime.Trap):
        return False
    code = trap.trap_code
    return code in LIMIT_TRAPS or (guard and code == wasmtime.TrapCode.UNREACHABLE)


LIMIT_TRAPS = (
    wasmtime.TrapCode.OUT_OF_FUEL,
    wasmtime.TrapCode.INTERRUPT,
    wasmtime.TrapCode.STACK_OVERFLOW,
)
