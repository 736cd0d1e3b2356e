"""The JavaScript evaluated once into the snapshot: console capture, finish() and its guards.

Everything the host relies on after user code ran is captured here, before any user code
exists, so overriding ``JSON.stringify``, ``Array.prototype`` or ``String`` cannot change how
results, errors and output are reported. Nothing of it has a global name: the script
evaluates to ``[finish, caps, tick]`` and only the host holds those values. The files of
``sandbox/js`` (modules, Worker globals, the clock flag; see ``sandbox.modules``) are part of
the same script and scope (``source()``).

Per run the host writes ``[max lines, max output units, max result units, state, logged, ...]``
(the ``CAP_*`` slots below, then a fresh random key) into the ``caps`` buffer (an
``Int32Array``), evaluates ``RUN_PREFIX + code + RUN_SUFFIX`` (an async
function called at once: no glue frame is on the stack while the code runs), drains the job
queue, reads the state of the promise it got with ``JS_PromiseState`` (-1 not a promise,
0 pending, 1 fulfilled, 2 rejected; an exception from the eval itself is state 2) and calls
``finish`` with the promise's result, or the exception, as ``this`` (unless the code logged
nothing and returned an int, a boolean, null or undefined: the host writes that JSON itself,
see ``execution``). Its answer is one string::

    <meta JSON>\\n<output lines JSON array>\\n<result JSON>

meta = [state, errorName, errorMessage, errorStack, thrownNull, outputLimitHit]; state 0
never settled, 1 returned, 2 threw, 3 result too large.

The script is compiled without its source text (``JS_WRITE_OBJ_STRIP_SOURCE``), so
``String(console.log)`` shows ``[native code]``. The glue still runs user code (``toJSON``,
getters, ``toString``) from ``console.log`` and ``finish``; while it does, the engine's
``prepareStackTrace`` slot holds a filter that drops the frames of this file (its filename is
``<prelude>``) before they reach the code's own hook or the default ``stack`` text, and
``Error.prepareStackTrace`` is an accessor of ours that only records the code's hook then.

What user code can still change is its own run's output, through JSON semantics the glue
keeps on purpose: ``toJSON`` (also ``Object.prototype.toJSON``), ``toString`` and getters of
the values it logs or returns are called as ``JSON.stringify``/``String`` would call them.
"""

from __future__ import annotations

import functools
from pathlib import Path

RUN_PREFIX = "(async function(){"
RUN_SUFFIX = "\n})()"
FILENAME = "<prelude>"
CAP_STATE = 3  # index of the state slot in caps
CAP_LOGGED = 4  # set by console.* (the host may format a primitive result itself if not)
CAP_STREAM = 5  # set by the host: console.* hands each line to it too (see sandbox._stream)
CAP_MODULES = 6  # bits of the modules require() may return (host-written, see MODULE_BITS)
CAP_CLOCK = 7  # set when the code read a clock (Date, performance.now, timers)
CAP_TIMERS = 8  # number of pending timers (the host then calls tick(), see execution)
CAP_NEED_LIB = 9  # set in the plain snapshot when the code touched a stub (see modules)
CAP_RANDOM = 10  # set when the code first drew on the run's random key (see random.js)
CAP_KEY = 12  # 8 slots: the run's 32-byte random key (host-written from os.urandom)
KEY_BYTES = 32
CAP_SLOTS = CAP_KEY + KEY_BYTES // 4
MODULE_BITS = {"path": 1, "util": 2, "crypto": 4}
# The files of sandbox/js, in evaluation order, inserted at /*@LIB@*/ (one shared scope):
# the full snapshot's (modules and Worker globals) and the plain snapshot's.
LIB_FILES = (
    "bytes.js",
    "hash.js",
    "random.js",
    "inspect.js",
    "text.js",
    "path.js",
    "util.js",
    "crypto.js",
    "url.js",
    "clock.js",
    "globals.js",
    "install.js",
)
PLAIN_FILES = ("clock.js", "stubs.js")

PRELUDE = r"""
(() => {
  "use strict";
  const stringify = JSON.stringify;
  const S = String;
  const apply = Reflect.apply;
  const defineProperty = Object.defineProperty;
  const getDescriptor = Object.getOwnPropertyDescriptor;
  const getPrototypeOf = Object.getPrototypeOf;
  const trimEnd = String.prototype.trimEnd;
  const ErrorCtor = Error;
  const isError = typeof Error.isError === "function" ? Error.isError : null;
  const objectToString = Object.prototype.toString;
  const bigintReplacer = (k, v) => (typeof v === "bigint" ? S(v) : v);
  const caps = new Int32Array(CAP_SLOTS);
  // The engine's own Date.now (one WASI clock_time_get, allocates nothing): in a streamed
  // run the host's clock sees finish[0] set and takes the line (see sandbox._stream).
  const hostClock = Date.now;

  // Stack traces while glue code runs: drop this file's frames.
  const engineHook = getDescriptor(ErrorCtor, "prepareStackTrace");
  const realGet = engineHook.get, realSet = engineHook.set;
  apply(realSet, ErrorCtor, [(e, sites) => sites]);
  const siteProto = getPrototypeOf(new ErrorCtor().stack[0]);
  apply(realSet, ErrorCtor, [undefined]);
  const site = (name) => getDescriptor(siteProto, name).value;
  const getFunction = site("getFunction"), getFunctionName = site("getFunctionName");
  const getFileName = site("getFileName"), isNative = site("isNative");
  const getLine = site("getLineNumber"), getColumn = site("getColumnNumber");
  let userHook, depth = 0;
  const text = (s) => {
    const file = apply(getFileName, s, []), line = apply(getLine, s, []);
    const where = line === null || line < 0 ? "" : ":" + line + ":" + apply(getColumn, s, []);
    if (apply(getFunction, s, []) === null) return "    at " + file + where + "\n";
    const name = apply(getFunctionName, s, []);
    return "    at " + (name || "<anonymous>") +
      (apply(isNative, s, []) ? " (native)" : " (" + (file ?? "<null>") + where + ")") + "\n";
  };
  const filter = (error, sites) => {
    const kept = [];
    let n = 0, plain = "";
    for (let i = 0; i < sites.length; i++) {
      const s = sites[i];
      if (apply(getFileName, s, []) === "<prelude>") continue;
      defineProperty(kept, n++, { value: s, writable: true, enumerable: true, configurable: true });
    }
    if (typeof userHook === "function") return apply(userHook, ErrorCtor, [error, kept]);
    for (let i = 0; i < n; i++) plain += text(kept[i]);
    return plain;
  };
  const enter = () => { if (depth++ === 0) apply(realSet, ErrorCtor, [filter]); };
  const leave = () => { if (--depth === 0) apply(realSet, ErrorCtor, [userHook]); };
  const accessor = getDescriptor({
    get prepareStackTrace() { apply(realGet, this, []); return userHook; },
    set prepareStackTrace(v) { apply(realSet, this, [depth === 0 ? v : filter]); userHook = v; },
  }, "prepareStackTrace");
  defineProperty(ErrorCtor, "prepareStackTrace", {
    get: accessor.get, set: accessor.set, enumerable: false, configurable: true,
  });

  let lines = "";  // JSON string literals separated by ","
  let nLines = 0, nUnits = 0, limitHit = false;
  const noError = ["", "", "", false];
  const okHead = '[1,"","","",false,false]\n[', okPlain = okHead + "]\n";

  const errorLike = (x) => {
    if (isError !== null) return isError(x);
    try { return apply(objectToString, x, []) === "[object Error]"; } catch { return false; }
  };
  const json = (x) => {
    try { return stringify(x); } catch {
      try { return stringify(x, bigintReplacer); } catch { return undefined; }
    }
  };
  const format = (x) => {
    switch (typeof x) {
      case "string": return x;
      case "bigint": return S(x) + "n";
      case "symbol": case "number": case "boolean": case "undefined": return S(x);
      case "function": {
        let name = "";
        try { name = S(x.name); } catch {}
        return name ? "[Function: " + name + "]" : "[Function (anonymous)]";
      }
    }
    if (x === null) return "null";
    if (errorLike(x)) {
      const text = S(x.name) + ": " + S(x.message);
      const stack = x.stack;
      return typeof stack === "string" && stack ? text + "\n" + apply(trimEnd, stack, []) : text;
    }
    const text = json(x);
    return typeof text === "string" ? text : S(x);
  };
  const stop = () => {
    limitHit = true;
    const e = new ErrorCtor("console output exceeded its limit");
    e.name = "OutputLimitError";
    throw e;
  };
  const log = function () {
    enter();
    caps[4] = 1;
    try {
      if (limitHit) stop();
      let line = "";
      for (let i = 0; i < arguments.length; i++) {
        let part;
        try { part = format(arguments[i]); } catch { part = "[unprintable]"; }
        line = i === 0 ? part : line + " " + part;
      }
      if (nLines + 1 > caps[0] || nUnits + line.length > caps[1]) stop();
      nLines++;
      nUnits += line.length;
      const literal = stringify(line);  // kept to the end in both modes: same frees, same fuel
      lines = nLines === 1 ? literal : lines + "," + literal;
      if (caps[5] !== 0) { finish[0] = literal; hostClock(); finish[0] = null; }
    } finally { leave(); }
  };
  const console = {};
  const open = (v, enumerable) => ({ value: v, writable: true, enumerable, configurable: true });
  for (const name of ["log", "info", "warn", "error", "debug", "trace"]) {
    defineProperty(console, name, open(log, true));
  }
  defineProperty(globalThis, "console", open(console, false));
  defineProperty(globalThis, "context", open({}, false));
  // an error created with the stack filter on (no glue frames), with Node's `code`
  const glueError = (Ctor, message, code) => {
    enter();
    try {
      const e = new Ctor(message);
      if (code !== undefined) e.code = code;
      return e;
    } finally { leave(); }
  };
  // timers (sandbox/js/globals.js replaces tick) and how they can end a run
  let timerFailed = false, timerError, timedOut = false;
  let tick = function () { return -1; };
/*@LIB@*/

  const describe = (e) => {
    if (e !== null && (typeof e === "object" || typeof e === "function")) {
      let name = "Error", message = "", stack = "";
      try { if (typeof e.name === "string" && e.name) name = e.name; } catch {}
      try {
        const m = e.message;
        message = m === undefined ? (errorLike(e) ? "" : format(e)) : S(m);
      } catch { message = "[unprintable]"; }
      try { if (typeof e.stack === "string") stack = e.stack; } catch {}
      return [name, message, stack, false];
    }
    let message;
    try { message = typeof e === "string" ? e : format(e); } catch { message = "[unprintable]"; }
    return ["Error", message, "", e === null];
  };

  const timeoutError = { name: "TimeoutError", message: "execution timed out", stack: "" };
  const report = (value) => {
    let state = caps[3], result = "null", error = noError;
    if (state === 1) {
      try {
        const text = value === undefined ? "null"
          : typeof value === "number" && value - value === 0 ? S(value)  // finite: as JSON
          : stringify(value);
        result = text === undefined ? "null" : text;
      } catch (first) {
        try {
          const text = stringify(value, bigintReplacer);
          result = text === undefined ? "null" : text;
        } catch (e) { state = 2; value = e; }
      }
      if (state === 1 && result.length > caps[2]) { state = 3; result = "null"; }
    }
    if (timedOut) { state = 2; value = timeoutError; }
    else if (timerFailed && state !== 2) { state = 2; value = timerError; }
    if (state === 2) { error = describe(value); result = "null"; }
    if (state === 1 && !limitHit) {
      return nLines === 0 ? okPlain + result : okHead + lines + "]\n" + result;
    }
    return stringify([state, error[0], error[1], error[2], error[3], limitHit]) +
      "\n[" + lines + "]\n" + result;
  };
  // The host calls finish with the promise's result (or the exception) as `this`.
  const finish = function () {
    enter();
    try { return report(this); } finally { leave(); }
  };
  // finish[0]: the line being streamed, read by the host while hostClock() is in the host.
  defineProperty(finish, 0, { value: null, writable: true, enumerable: false });
  return [finish, caps.buffer, tick];
})()
"""


@functools.cache
def source(full: bool = True) -> str:
    """The whole prelude: ``PRELUDE`` with the files of ``sandbox/js`` in its scope.

    ``full``: the modules and Worker globals (``LIB_FILES``), else the plain snapshot's
    stand-ins for them (``PLAIN_FILES``).
    """
    folder = Path(__file__).parent / "js"
    constants = (
        f"  const CAP_SLOTS = {CAP_SLOTS}, CAP_LOGGED = {CAP_LOGGED}, CAP_MODULES = {CAP_MODULES},"
        f" CAP_CLOCK = {CAP_CLOCK}, CAP_TIMERS = {CAP_TIMERS}, CAP_NEED_LIB = {CAP_NEED_LIB},"
        f" CAP_RANDOM = {CAP_RANDOM}, CAP_KEY = {CAP_KEY};\n"
    )
    files = LIB_FILES if full else PLAIN_FILES
    lib = "".join((folder / name).read_text("utf-8") for name in files)
    head, tail = PRELUDE.split("/*@LIB@*/\n")
    return head.replace('  "use strict";\n', '  "use strict";\n' + constants, 1) + lib + tail
