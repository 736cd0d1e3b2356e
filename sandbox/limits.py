"""Per-run limits and the names of the limit errors reported in ``Result.error.type``."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.modules import mask, unknown

TIMEOUT = "TimeoutError"
FUEL = "FuelExhaustedError"
MEMORY = "MemoryLimitError"
OUTPUT = "OutputLimitError"
RESULT = "ResultLimitError"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one run may use.

    ``memory_bytes`` caps the whole wasm linear memory: the engine's own baseline (about
    0.9 MiB with the 512 KiB JavaScript stack) plus the JS heap. A cap below the baseline
    means the run cannot allocate beyond what the snapshot already holds. ``fuel`` is wasm
    fuel (the service derives it from the timeout; see ``docs/performance.md``).
    ``modules`` names the modules ``require``/``import()`` may return (``path``, ``util``,
    ``crypto``, with or without ``node:``, or ``*`` for all; see ``sandbox.modules``).
    """

    timeout_ms: int = 5000
    memory_bytes: int = 50 * 1024 * 1024
    fuel: int = 80_000_000_000
    max_code_bytes: int = 64 * 1024
    max_output_lines: int = 1000
    max_output_bytes: int = 1024 * 1024
    max_result_bytes: int = 1024 * 1024
    modules: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.modules, frozenset):
            raise ValueError(f"Limits.modules must be a frozenset, got {self.modules!r}")
        if bad := unknown(self.modules):
            raise ValueError(f"Limits.modules: no such module: {', '.join(sorted(bad))}")
        for name in self.__slots__:
            if name == "modules":
                continue
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")

    @property
    def module_mask(self) -> int:
        """The bitmask of allowed modules the host writes into the prelude's ``caps``."""
        return mask(self.modules)

    def deadline_ticks(self, tick_ms: int) -> int:
        """Epoch ticks until the deadline: the run ends within one tick after ``timeout_ms``."""
        return -(-self.timeout_ms // tick_ms) + 1
