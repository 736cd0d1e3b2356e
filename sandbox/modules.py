"""The Node modules the sandbox provides (``path``, ``util``, ``crypto``) and how code reaches them.

Their JavaScript is part of the prelude (``sandbox/js/*.js``), evaluated once into the
snapshot: ``require(name)`` (also ``node:name``) returns the module's object when the run's
``Limits.modules`` allows it, read from a bitmask the host writes into the prelude's ``caps``
buffer, else it throws ``ERR_MODULE_NOT_ALLOWED``; any other name throws
``MODULE_NOT_FOUND``.

``await import(name)`` works without a module loader: QuickJS resolves a bare specifier to an
already compiled module of that name before it asks a loader. The snapshot holds one such
module per name (compiled, never evaluated) whose body is
``const m = require(name); export default m; export const {...} = m``, with ``require`` taken
from a module evaluated while the snapshot was built (so a ``globalThis.require`` replaced by
the code does not change what ``import()`` returns). Evaluation happens at the first
``import()`` of a run and throws the same errors as ``require``. Quirks: ``import("./path")``
resolves to ``path`` too (QuickJS normalises it relative to ``<code>``), and the helper module
``<codexec:require>`` can be imported (it exports only ``require``).

Two snapshots. Every run copies back the heap it may have touched (``Instance._reset``), and
the modules and Worker globals add ~250 KB of bytecode and objects to it (~9 us per run). So
code of at most ``PLAIN_MAX_CHARS`` is run in a *plain* snapshot unless it mentions one of
them (``may_need_lib``: a substring scan of the code). The plain snapshot has the clock flag
(``Date``, ``performance``) and stand-ins for everything else: ``require``, the ``import()``
wrappers, the Worker globals (accessors) and ``console.table``/``dir``. Touching a stand-in
(through ``eval``, computed names, ...) sets ``caps[CAP_NEED_LIB]`` and throws; the host then
runs the code again, from the start and with the same seed, in the full snapshot, with what
the first run left of the fuel and time (``remaining``), and reports that run's outcome with
the measurements of both (``rerun``). Visible difference in the plain snapshot: property
descriptors of those globals are accessors until touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from sandbox._guest import TAG_EXCEPTION, Guest, tag
from sandbox._prelude import MODULE_BITS
from sandbox.result import Result

if TYPE_CHECKING:
    from sandbox.limits import Limits

PROVIDED = tuple(MODULE_BITS)
ALL = "*"
# Node names the Worker's plans list but codexec does not provide: import() of them throws
# the same MODULE_NOT_FOUND error as require() (instead of QuickJS's "could not load module").
UNAVAILABLE = ("fs", "http", "https", "zlib", "stream", "child_process")
EXPORTS = {
    "path": [
        "sep",
        "delimiter",
        "resolve",
        "normalize",
        "isAbsolute",
        "join",
        "relative",
        "toNamespacedPath",
        "dirname",
        "basename",
        "extname",
        "format",
        "parse",
        "posix",
    ],
    "util": [
        "format",
        "formatWithOptions",
        "inspect",
        "promisify",
        "callbackify",
        "types",
        "isDeepStrictEqual",
        "inherits",
        "deprecate",
        "isArray",
        "TextEncoder",
        "TextDecoder",
    ],
    "crypto": [
        "createHash",
        "createHmac",
        "Hash",
        "Hmac",
        "getHashes",
        "randomBytes",
        "randomInt",
        "randomUUID",
        "getRandomValues",
        "timingSafeEqual",
        "webcrypto",
        "subtle",
    ],
}
PROVIDER = "<codexec:require>"
_MODULE = 1  # JS_EVAL_TYPE_MODULE
_COMPILE_ONLY = 1 << 5


def normalize(name: str) -> str:
    """``node:path`` -> ``path``."""
    return name[5:] if name.startswith("node:") else name


def unknown(names: Iterable[str]) -> list[str]:
    """The names in ``names`` that are neither a provided module nor ``*``."""
    return [n for n in names if n != ALL and normalize(n) not in MODULE_BITS]


def mask(names: Iterable[str]) -> int:
    """The ``caps`` bitmask allowing ``names`` (``*`` allows every provided module)."""
    bits = 0
    for name in names:
        if name == ALL:
            return sum(MODULE_BITS.values())
        bits |= MODULE_BITS.get(normalize(name), 0)
    return bits


def _wrapper(name: str) -> str:
    head = f'import {{ require }} from "{PROVIDER}"; const m = require("{name}");'
    exports = EXPORTS.get(normalize(name))
    if exports is None:
        return head
    return f"{head} export default m; export const {{ {', '.join(exports)} }} = m;"


def load(guest: Guest, ctx: int, lenp: int) -> None:
    """Evaluate the provider module and compile one wrapper module per importable name."""
    _eval(guest, ctx, lenp, PROVIDER, "export const require = globalThis.require;", 0)
    for base in (*PROVIDED, *UNAVAILABLE):
        for name in (base, "node:" + base):
            _eval(guest, ctx, lenp, name, _wrapper(name), _COMPILE_ONLY)


def _eval(guest: Guest, ctx: int, lenp: int, name: str, text: str, flags: int) -> None:
    source = text.encode() + b"\0"
    src = guest.alloc(source)
    filename = guest.alloc(name.encode() + b"\0")
    value = guest.eval(ctx, src, len(source) - 1, filename, _MODULE | flags)
    guest.free(src)
    guest.free(filename)
    if tag(value) == TAG_EXCEPTION:
        error = guest.string(ctx, guest.get_exception(ctx), lenp)
        raise RuntimeError(f"module {name}: {error}")


# Words without which code is run in the plain snapshot (no modules, no Worker globals but
# stand-ins): code that reaches them anyway (eval, computed names) touches a stand-in and is
# run again in the full snapshot; the words only spare it that second run. The scan costs
# ~15 ns per character, more than the plain snapshot saves (~9 us) beyond ~600 characters:
# longer code goes to the full snapshot unscanned.
PLAIN_MAX_CHARS = 1000
_LIB_WORDS = re.compile(
    "require|import|URL|TextEncoder|TextDecoder|structuredClone|crypto|fetch|setTimeout"
    "|setInterval|clearTimeout|clearInterval|table|dir"
)


def may_need_lib(code: str) -> bool:
    """Whether ``code`` runs in the full snapshot: it is long or mentions a module or global."""
    return len(code) > PLAIN_MAX_CHARS or _LIB_WORDS.search(code) is not None


def remaining(limits: Limits, first: Result) -> Limits:
    """The limits of the second run: what the first one left of the fuel and the time."""
    fuel = max(1, limits.fuel - first.fuel)
    timeout_ms = max(1, limits.timeout_ms - int(first.wall_ms))
    return replace(limits, fuel=fuel, timeout_ms=timeout_ms)


def rerun(first: Result, second: Result) -> Result:
    """The result of a run started in the plain snapshot and run again in the full one.

    The second run's outcome, with the measurements of both (both were run and billed).
    """
    return replace(
        second,
        fuel=first.fuel + second.fuel,
        cpu_ms=first.cpu_ms + second.cpu_ms,
        wall_ms=first.wall_ms + second.wall_ms,
        read_clock=first.read_clock or second.read_clock,
        read_random=first.read_random or second.read_random,
    )
