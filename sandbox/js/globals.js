// globals.js: Worker globals (timers, structuredClone, crypto, fetch, text codecs,
// console.table/dir).
// guard(fn): the same function, run with the stack filter on (no glue frames in the stacks
// of errors it throws); its own properties are copied.
const guard = (fn) => {
  const wrapped = nameFunction(function () {
    enter();
    try { return new.target ? Reflect.construct(fn, arguments, new.target) : apply(fn, this, arguments); }
    finally { leave(); }
  }, fn.name, fn.length);
  for (const key of ownKeys(fn)) {
    if (key !== "name" && key !== "length" && key !== "prototype") {
      defineProperty(wrapped, key, getDescriptor(fn, key));
    }
  }
  return wrapped;
};
const guardAll = (obj) => {
  for (const key of ownKeys(obj)) {
    const d = getDescriptor(obj, key);
    const fn = d.value;  // classes (a prototype with methods) are left alone: see guardMethods
    if (typeof fn === "function" && !(fn.prototype && Object.getOwnPropertyNames(fn.prototype).length > 1)) {
      d.value = guard(d.value);
      defineProperty(obj, key, d);
    }
  }
  return obj;
};
const guardMethods = (cls) => {
  const proto = cls.prototype;
  for (const key of ownKeys(proto)) {
    const d = getDescriptor(proto, key);
    if (key !== "constructor" && typeof d.value === "function") {
      d.value = guard(d.value);
      defineProperty(proto, key, d);
    }
  }
  return cls;
};

// Timers. The host calls tick() when the job queue is empty and caps[CAP_TIMERS] > 0: it
// fires the first due timer and answers 0, or answers the ms until the next one is due.
const timers = new Map();  // id -> [due, callback, args, interval or -1]
let nextTimerId = 1;
const checkCallback = (callback) => {
  if (typeof callback !== "function") {
    throw typeError("The \"callback\" argument must be of type function. Received " +
      describeArg(callback), "ERR_INVALID_ARG_TYPE");
  }
};
const addTimer = (callback, delay, args, repeat) => {
  checkCallback(callback);
  caps[CAP_CLOCK] = 1;
  let ms = Number(delay);
  if (!(ms >= 1 && ms <= 2147483647)) ms = 1;
  const id = nextTimerId++;
  timers.set(id, [now() + ms, callback, args, repeat ? ms : -1]);
  caps[CAP_TIMERS] = timers.size;
  return id;
};
const clearTimer = (id) => {
  if (typeof id === "number" && timers.delete(id)) caps[CAP_TIMERS] = timers.size;
};
const setTimeout = function setTimeout(callback, delay, ...args) { return addTimer(callback, delay, args, false); };
const setInterval = function setInterval(callback, delay, ...args) { return addTimer(callback, delay, args, true); };
const clearTimeout = function clearTimeout(id) { clearTimer(id); };
const clearInterval = function clearInterval(id) { clearTimer(id); };
tick = function () {
  if (caps[CAP_TIMERS] < 0) {  // the host: the run's time is up with timers pending
    timers.clear();
    caps[CAP_TIMERS] = 0;
    caps[CAP_LOGGED] = 1;
    timedOut = true;
    return -1;
  }
  let first = -1, due = Infinity;
  for (const [id, timer] of timers) {
    if (timer[0] < due) { due = timer[0]; first = id; }
  }
  if (first < 0) { caps[CAP_TIMERS] = 0; return -1; }
  const wait = due - now();
  if (wait > 0) return Math.ceil(wait);
  const timer = timers.get(first);
  if (timer[3] >= 0) timer[0] = Math.max(due + timer[3], now());
  else timers.delete(first);
  caps[CAP_TIMERS] = timers.size;
  enter();
  try {
    apply(timer[1], undefined, timer[2]);
  } catch (e) {  // like an uncaught exception in Node: the run fails with it
    timerFailed = true;
    timerError = e;
    timers.clear();
    caps[CAP_TIMERS] = 0;
    caps[CAP_LOGGED] = 1;
  } finally { leave(); }
  return 0;
};

// structuredClone (the HTML structured clone algorithm, no transfer)
const cloneError = (v) => {
  let text;
  try { text = typeof v === "symbol" ? apply(Symbol.prototype.toString, v, []) : S(v); }
  catch { text = "#<Object>"; }
  return new DOMException(text + " could not be cloned.", "DataCloneError");
};
const ERROR_TYPES = { __proto__: null, Error, EvalError, RangeError, ReferenceError, SyntaxError,
  TypeError, URIError };
const cloneValue = (v, memo) => {
  if (typeof v === "symbol" || typeof v === "function") throw cloneError(v);
  if (v === null || typeof v !== "object") return v;
  if (memo.has(v)) return memo.get(v);
  let out;
  const tag = tagOf(v);
  if (Array.isArray(v)) out = new Array(v.length);
  else if (tag === "Date") out = new RealDate(apply(RealDate.prototype.getTime, v, []));
  else if (tag === "RegExp") out = new RegExp(v.source, v.flags);
  else if (tag === "Boolean" || tag === "Number" || tag === "String" || tag === "BigInt") {
    out = Object(v.valueOf());
  } else if (v instanceof ArrayBuffer) out = v.slice(0);
  else if (isView(v)) {
    const buffer = cloneValue(v.buffer, memo);
    out = v instanceof DataView ? new DataView(buffer, v.byteOffset, v.byteLength)
      : new v.constructor(buffer, v.byteOffset, v.length);
    memo.set(v, out);
    return out;
  } else if (v instanceof Map) {
    out = new Map();
    memo.set(v, out);
    for (const [k, x] of v) out.set(cloneValue(k, memo), cloneValue(x, memo));
    return out;
  } else if (v instanceof Set) {
    out = new Set();
    memo.set(v, out);
    for (const x of v) out.add(cloneValue(x, memo));
    return out;
  } else if (errorLike(v)) {
    const Ctor = ERROR_TYPES[v.name] ?? Error;
    out = new Ctor(v.message);
    memo.set(v, out);
    if ("cause" in v) out.cause = cloneValue(v.cause, memo);
    defineProperty(out, "stack", open(v.stack, false));
    return out;
  } else if (tag === "Object" || tag === "Arguments") out = {};
  else throw cloneError(v);
  memo.set(v, out);
  for (const key of Object.keys(v)) out[key] = cloneValue(v[key], memo);
  return out;
};
const structuredClone = function structuredClone(value, options) {
  if (arguments.length === 0) {
    throw typeError("The \"value\" argument must be specified", "ERR_MISSING_ARGS");
  }
  return cloneValue(value, new Map());
};

// fetch: there is no network in the sandbox
class NetworkDisabledError extends Error {}
defineProperty(NetworkDisabledError.prototype, "name", open("NetworkDisabledError", false));
const fetch = function fetch(input, init) {
  enter();
  try {
    return Promise.reject(new NetworkDisabledError(
      "fetch() is not available: code in codexec runs without network access"));
  } finally { leave(); }
};

// console.table and console.dir, formatted like Node 20.20 (left-aligned cells)
const tableRow = (row, widths) => {
  let out = "│ ";
  for (let i = 0; i < row.length; i++) {
    out += row[i] + " ".repeat(widths[i] - row[i].length);
    if (i !== row.length - 1) out += " │ ";
  }
  return out + " │";
};
const renderTable = (head, columns) => {
  const rows = [], widths = head.map((h) => h.length);
  const longest = Math.max(...columns.map((a) => a.length));
  for (let i = 0; i < head.length; i++) {
    const column = columns[i];
    for (let j = 0; j < longest; j++) {
      if (rows[j] === undefined) rows[j] = [];
      const value = rows[j][i] = Object.prototype.hasOwnProperty.call(column, j) ? column[j] : "";
      widths[i] = Math.max(widths[i] || 0, value.length);
    }
  }
  const divider = widths.map((w) => "─".repeat(w + 2));
  let result = "┌" + divider.join("┬") + "┐\n" + tableRow(head, widths) + "\n" +
    "├" + divider.join("┼") + "┤\n";
  for (const row of rows) result += tableRow(row, widths) + "\n";
  return result + "└" + divider.join("┴") + "┘";
};
const tableCell = (v) => {
  const depth = v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 2 ? -1 : 0;
  return inspectValue(v, { depth, maxArrayLength: 3, breakLength: Infinity });
};
const consoleTable = function table(data, properties) {
  if (data === null || typeof data !== "object") return log(data);
  const index = (n) => Array.from({ length: n }, (_, i) => tableCell(i));
  if (data instanceof Map) {
    const keys = [], values = [];
    for (const [k, v] of data) { keys.push(tableCell(k)); values.push(tableCell(v)); }
    return log(renderTable(["(iteration index)", "Key", "Values"], [index(keys.length), keys, values]));
  }
  if (data instanceof Set) {
    const values = [];
    for (const v of data) values.push(tableCell(v));
    return log(renderTable(["(iteration index)", "Values"], [index(values.length), values]));
  }
  const map = { __proto__: null }, valuesColumn = [], indexKeys = Object.keys(data);
  let hasPrimitives = false;
  for (let i = 0; i < indexKeys.length; i++) {
    const item = data[indexKeys[i]];
    const primitive = item === null || (typeof item !== "function" && typeof item !== "object");
    if (properties === undefined && primitive) {
      hasPrimitives = true;
      valuesColumn[i] = tableCell(item);
    } else {
      const keys = properties || Object.keys(item);
      for (const key of keys) {
        map[key] ??= [];
        map[key][i] = (primitive && properties) || !Object.prototype.hasOwnProperty.call(item, key)
          ? "" : tableCell(item[key]);
      }
    }
  }
  const head = Object.keys(map), columns = Object.values(map);
  if (hasPrimitives) { head.push("Values"); columns.push(valuesColumn); }
  head.unshift("(index)");
  columns.unshift(indexKeys);
  return log(renderTable(head, columns));
};
const consoleDir = function dir(value, options) {
  return log(inspectValue(value, { customInspect: false, ...(options ?? {}) }));
};
