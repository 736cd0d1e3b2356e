"""The JavaScript evaluated once into the snapshot: console capture, the runner, finish().

Everything the host relies on after user code ran is captured here, before any user code
exists, so overriding ``JSON.stringify``, ``Array.prototype``, ``Promise.prototype.then`` or
``String`` cannot change how results, errors and output are reported. Per run the host
evaluates ``RUN_PREFIX + code + RUN_SUFFIX``; after the job queue is drained it converts the
function this script evaluates to (``finish``) to a string, which calls it (it is its own
``Symbol.toPrimitive``; when the code did not even compile the host calls it with the
exception as its one argument and ``this`` undefined instead). Either way the answer is one
string::

    <meta JSON>\\n<output lines JSON array>\\n<result JSON>

meta = [state, errorName, errorMessage, errorStack, thrownNull, outputLimitHit]; state 0
never settled, 1 returned, 2 threw, 3 result too large.
"""

from __future__ import annotations

RUN_PREFIX = "__codexec_run(%d,%d,%d,async function(){"
RUN_SUFFIX = "\n})"

PRELUDE = r"""
(() => {
  "use strict";
  const g = globalThis;
  const stringify = JSON.stringify;
  const S = String;
  const apply = Reflect.apply;
  const defineProperty = Object.defineProperty;
  const trimEnd = String.prototype.trimEnd;
  const then = Promise.prototype.then;
  const ErrorCtor = Error;
  const isError = typeof Error.isError === "function" ? Error.isError : null;
  const objectToString = Object.prototype.toString;
  const bigintReplacer = (k, v) => (typeof v === "bigint" ? S(v) : v);

  let lines = "";  // JSON string literals separated by ","
  let nLines = 0, nUnits = 0, maxLines = 0, maxUnits = 0, limitHit = false;
  let state = 0, value, maxResult = 0;
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
    if (limitHit) stop();
    let line = "";
    for (let i = 0; i < arguments.length; i++) {
      let part;
      try { part = format(arguments[i]); } catch { part = "[unprintable]"; }
      line = i === 0 ? part : line + " " + part;
    }
    if (nLines + 1 > maxLines || nUnits + line.length > maxUnits) stop();
    nLines++;
    nUnits += line.length;
    lines = nLines === 1 ? stringify(line) : lines + "," + stringify(line);
  };
  const console = {};
  const open = (v, enumerable) => ({ value: v, writable: true, enumerable, configurable: true });
  for (const name of ["log", "info", "warn", "error", "debug", "trace"]) {
    defineProperty(console, name, open(log, true));
  }
  defineProperty(g, "console", open(console, false));
  defineProperty(g, "context", open({}, false));

  const settle = [(v) => { state = 1; value = v; }, (e) => { state = 2; value = e; }];
  defineProperty(g, "__codexec_run", {
    value: (lineCap, unitCap, resultCap, fn) => {
      maxLines = lineCap; maxUnits = unitCap; maxResult = resultCap;
      apply(then, fn(), settle);
    },
  });

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

  function finish(thrown) {
    if (this !== finish) { state = 2; value = thrown; }  // not called by ToPrimitive
    let result = "null", error = noError;
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
      if (state === 1 && result.length > maxResult) { state = 3; result = "null"; }
    }
    if (state === 2) { error = describe(value); result = "null"; }
    if (state === 1 && !limitHit) {
      return nLines === 0 ? okPlain + result : okHead + lines + "]\n" + result;
    }
    return stringify([state, error[0], error[1], error[2], error[3], limitHit]) +
      "\n[" + lines + "]\n" + result;
  }
  // ToString(finish) calls finish (this === finish): one JS_ToCStringLen2 call both
  // finishes and converts. The host calls it as finish(exception) (this undefined).
  defineProperty(finish, Symbol.toPrimitive, { value: finish });
  return finish;
})()
"""
