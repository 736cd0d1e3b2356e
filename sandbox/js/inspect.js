// inspect.js: util.inspect and util.format, following Node's layout rules (breakLength 80,
// compact 3, depth 2, arrays of more than 6 items grouped in columns, 100 items at most).
// Not covered: colors, showProxy, getters, Promise and WeakMap internals (shown as
// `Promise { <unknown> }`), custom inspect via `Symbol.for('nodejs.util.inspect.custom')`.
const customInspect = Symbol.for("nodejs.util.inspect.custom");
const objectProtoToString = Object.prototype.toString;
const ownKeys = Reflect.ownKeys;
const IDENT = /^[a-zA-Z_][a-zA-Z_0-9]*$/;
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
const typedArrayTag = getDescriptor(typedArrayProto, Symbol.toStringTag).get;
const META = [
  "\\x00", "\\x01", "\\x02", "\\x03", "\\x04", "\\x05", "\\x06", "\\x07", "\\b", "\\t", "\\n",
  "\\x0B", "\\f", "\\r", "\\x0E", "\\x0F", "\\x10", "\\x11", "\\x12", "\\x13", "\\x14", "\\x15",
  "\\x16", "\\x17", "\\x18", "\\x19", "\\x1A", "\\x1B", "\\x1C", "\\x1D", "\\x1E", "\\x1F",
];
const strEscape = (str) => {
  let quote = "'";
  if (str.includes("'")) {
    if (!str.includes('"')) quote = '"';
    else if (!str.includes("`") && !str.includes("${")) quote = "`";
  }
  let out = "";
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    if (c === quote.charCodeAt(0) || c === 92 || c < 32 || c === 127) {
      out += c === 92 ? "\\\\" : c === 127 ? "\\x7F" : c < 32 ? META[c] : "\\" + quote;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = str.charCodeAt(i + 1);
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) { out += str[i] + str[i + 1]; i++; }
      else out += "\\u" + c.toString(16).toUpperCase();
    } else out += str[i];
  }
  return quote + out + quote;
};
const formatNumber = (n) => (Object.is(n, -0) ? "-0" : S(n));
const formatPrimitive = (v) => {
  switch (typeof v) {
    case "string": return strEscape(v);
    case "number": return formatNumber(v);
    case "bigint": return S(v) + "n";
    case "boolean": return S(v);
    case "undefined": return "undefined";
    case "symbol": return apply(Symbol.prototype.toString, v, []);
  }
  return "null";
};
const formatKey = (key) => {
  if (typeof key === "symbol") return "[" + apply(Symbol.prototype.toString, key, []) + "]";
  return IDENT.test(key) ? key : strEscape(key);
};
const constructorName = (obj) => {
  let o = obj;
  while (o !== null) {
    const d = getDescriptor(o, "constructor");
    if (d !== undefined && typeof d.value === "function" && d.value.name !== "") return d.value.name;
    o = getPrototypeOf(o);
  }
  return null;
};
const glueClasses = new Set();  // classes of the glue (their source text is stripped)
const fnBase = (fn, ctorName) => {
  let src = "";
  try { src = apply(Function.prototype.toString, fn, []); } catch {}
  const name = fn.name;
  if (glueClasses.has(fn) || (src.startsWith("class") && src.endsWith("}"))) {
    return "[class " + (name || "(anonymous)") + "]";
  }
  let type = "Function";
  if (ctorName === "AsyncFunction") type = "AsyncFunction";
  else if (ctorName === "GeneratorFunction") type = "GeneratorFunction";
  else if (ctorName === "AsyncGeneratorFunction") type = "AsyncGeneratorFunction";
  return "[" + type + (name ? ": " + name : " (anonymous)") + "]" +
    (ctorName === null ? " [null prototype]" : "");
};
const errorText = (err) => {
  let stack = "";
  try { stack = err.stack; } catch {}
  let head = "";
  try { head = S(err.name) + ": " + S(err.message); } catch { head = "Error"; }
  if (err.message === "") head = S(err.name);
  if (typeof stack !== "string" || stack === "") return "[" + head + "]";
  return stack.startsWith(head) ? stack.trimEnd() : head + "\n" + stack.trimEnd();
};
const isBelowBreakLength = (ctx, output, start, base) => {
  let total = output.length + start;
  if (total + output.length > ctx.breakLength) return false;
  for (let i = 0; i < output.length; i++) {
    total += output[i].length;
    if (total > ctx.breakLength) return false;
  }
  return base === "" || !base.includes("\n");
};
const groupArrayElements = (ctx, output, value) => {
  let totalLength = 0, maxLength = 0, outputLength = output.length;
  if (ctx.extraItems) outputLength--;
  const separatorSpace = 2, dataLen = new Array(outputLength);
  for (let i = 0; i < outputLength; i++) {
    const len = output[i].length;
    dataLen[i] = len;
    totalLength += len + separatorSpace;
    if (maxLength < len) maxLength = len;
  }
  const actualMax = maxLength + separatorSpace;
  if (actualMax * 3 + ctx.indentationLvl < ctx.breakLength &&
      (totalLength / actualMax > 5 || maxLength <= 6)) {
    const averageBias = Math.sqrt(actualMax - totalLength / output.length);
    const biasedMax = Math.max(actualMax - 3 - averageBias, 1);
    const columns = Math.min(
      Math.round(Math.sqrt(2.5 * biasedMax * outputLength) / biasedMax),
      Math.floor((ctx.breakLength - ctx.indentationLvl) / actualMax),
      ctx.compact * 4,
      15,
    );
    if (columns <= 1) return output;
    const tmp = [], maxLineLength = [];
    for (let i = 0; i < columns; i++) {
      let lineLength = 0;
      for (let j = i; j < output.length; j += columns) {
        if (dataLen[j] > lineLength) lineLength = dataLen[j];
      }
      maxLineLength.push(lineLength + separatorSpace);
    }
    let padStart = true;
    if (value !== undefined) {
      for (let i = 0; i < output.length; i++) {
        if (typeof value[i] !== "number" && typeof value[i] !== "bigint") { padStart = false; break; }
      }
    }
    for (let i = 0; i < outputLength; i += columns) {
      const max = Math.min(i + columns, outputLength);
      let str = "", j = i;
      for (; j < max - 1; j++) {
        const cell = output[j] + ", ";
        str += padStart ? cell.padStart(maxLineLength[j - i], " ") : cell.padEnd(maxLineLength[j - i], " ");
      }
      str += padStart ? output[j].padStart(maxLineLength[j - i] - separatorSpace, " ") : output[j];
      tmp.push(str);
    }
    if (ctx.extraItems) tmp.push(output[outputLength]);
    output = tmp;
  }
  return output;
};
const reduceToSingleString = (ctx, output, base, braces, isArrayLike, recurseTimes, value) => {
  const entries = output.length;
  if (isArrayLike && entries > 6) output = groupArrayElements(ctx, output, value);
  if (ctx.currentDepth - recurseTimes < ctx.compact && entries === output.length) {
    const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
    if (isBelowBreakLength(ctx, output, start, base)) {
      const joined = output.join(", ");
      if (!joined.includes("\n")) {
        return (base ? base + " " : "") + braces[0] + " " + joined + " " + braces[1];
      }
    }
  }
  const indentation = "\n" + " ".repeat(ctx.indentationLvl);
  return (base ? base + " " : "") + braces[0] + indentation + "  " +
    output.join("," + indentation + "  ") + indentation + braces[1];
};
const formatProperty = (ctx, value, recurseTimes, key, arrayLike) => {
  const desc = getDescriptor(value, key) ?? { value: value[key], enumerable: true };
  let str;
  if (desc.value !== undefined || !("get" in desc || "set" in desc)) {
    ctx.indentationLvl += arrayLike ? 2 : 2;
    str = formatValue(ctx, desc.value, recurseTimes);
    ctx.indentationLvl -= 2;
  } else if (desc.get !== undefined) {
    str = desc.set !== undefined ? "[Getter/Setter]" : "[Getter]";
  } else {
    str = desc.set !== undefined ? "[Setter]" : "undefined";
  }
  if (arrayLike) return str;
  const name = desc.enumerable === false ? "[" + formatKey(key) + "]" : formatKey(key);
  return name + ": " + str;
};
const prefix = (ctorName, tag, fallback, size) => {
  const s = size === undefined ? "" : "(" + size + ")";
  if (ctorName === null) {
    return "[" + fallback + s + ": null prototype" + (tag && tag !== fallback ? " [" + tag + "]" : "") + "] ";
  }
  return ctorName + s + " " + (tag !== "" && tag !== ctorName ? "[" + tag + "] " : "");
};
const formatValue = (ctx, value, recurseTimes, typedArray) => {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) {
    return formatPrimitive(value);
  }
  if (ctx.customInspect) {
    let custom;
    try { custom = value[customInspect]; } catch {}
    if (typeof custom === "function" && custom !== inspectValue) {
      const depth = ctx.depth === null ? null : ctx.depth - recurseTimes;
      const ret = apply(custom, value, [depth, { ...ctx.options, depth }, inspectValue]);
      if (ret !== value) return typeof ret === "string" ? ret : formatValue(ctx, ret, recurseTimes);
    }
  }
  if (ctx.seen.includes(value)) {
    let index = 1;
    if (ctx.circular === undefined) { ctx.circular = new Map(); ctx.circular.set(value, index); }
    else {
      index = ctx.circular.get(value);
      if (index === undefined) { index = ctx.circular.size + 1; ctx.circular.set(value, index); }
    }
    return "[Circular *" + index + "]";
  }
  return formatRaw(ctx, value, recurseTimes);
};
const formatRaw = (ctx, value, recurseTimes) => {
  const ctorName = constructorName(value);
  let tag = "";
  try { tag = value[Symbol.toStringTag]; } catch {}
  if (typeof tag !== "string") tag = "";
  let keys = ownKeys(value).filter((k) => {
    const d = getDescriptor(value, k);
    return d !== undefined && (ctx.showHidden || d.enumerable);
  });
  let base = "", braces, formatter, arrayLike = false, size;
  let extra = [];
  const noEntries = (b) => keys.length === 0;
  if (Array.isArray(value)) {
    keys = keys.filter((k) => typeof k !== "string" || !(String(k >>> 0) === k && k >>> 0 !== 4294967295));
    const p = ctorName !== "Array" || tag !== "" ? prefix(ctorName, tag, "Array", value.length) : "";
    braces = [p + "[", "]"];
    if (value.length === 0 && keys.length === 0) return braces[0] + "]";
    arrayLike = true;
    formatter = () => formatArray(ctx, value, recurseTimes);
  } else if (typeof value === "function") {
    base = fnBase(value, ctorName);
    keys = keys.filter((k) => k !== "prototype" || ctx.showHidden);
    if (keys.length === 0) return base;
    braces = ["{", "}"];
    formatter = () => [];
  } else if (value instanceof Map) {
    size = value.size;
    braces = [prefix(ctorName, tag, "Map", size) + "{", "}"];
    if (size === 0 && keys.length === 0) return braces[0] + "}";
    formatter = () => {
      const out = [];
      ctx.indentationLvl += 2;
      for (const [k, v] of value) {
        out.push(formatValue(ctx, k, recurseTimes) + " => " + formatValue(ctx, v, recurseTimes));
      }
      ctx.indentationLvl -= 2;
      return out;
    };
  } else if (value instanceof Set) {
    size = value.size;
    braces = [prefix(ctorName, tag, "Set", size) + "{", "}"];
    if (size === 0 && keys.length === 0) return braces[0] + "}";
    formatter = () => {
      const out = [];
      ctx.indentationLvl += 2;
      for (const v of value) out.push(formatValue(ctx, v, recurseTimes));
      ctx.indentationLvl -= 2;
      return out;
    };
  } else if (isView(value) && !(value instanceof DataView)) {
    const name = apply(typedArrayTag, value, []);
    keys = keys.filter((k) => typeof k !== "string" || !(String(k >>> 0) === k));
    braces = [prefix(ctorName, tag === name ? "" : tag, name, value.length) + "[", "]"];
    if (value.length === 0 && keys.length === 0) return braces[0] + "]";
    arrayLike = true;
    formatter = () => {
      const n = Math.min(value.length, ctx.maxArrayLength), out = [];
      for (let i = 0; i < n; i++) {
        out.push(typeof value[i] === "bigint" ? S(value[i]) + "n" : formatNumber(value[i]));
      }
      if (value.length > n) {
        const rest = value.length - n;
        out.push("... " + rest + " more item" + (rest > 1 ? "s" : ""));
        ctx.extraItems = true;
      }
      return out;
    };
  } else if (value instanceof ArrayBuffer) {
    braces = [prefix(ctorName, tag === "ArrayBuffer" ? "" : tag, "ArrayBuffer") + "{", "}"];
    formatter = () => {
      const bytes = new U8(value), n = Math.min(bytes.length, 50);
      let hex = "";
      for (let i = 0; i < n; i++) hex += (i ? " " : "") + HEX[bytes[i] >> 4] + HEX[bytes[i] & 15];
      if (bytes.length > n) hex += " ... " + (bytes.length - n) + " more byte" + (bytes.length - n > 1 ? "s" : "");
      return ["[Uint8Contents]: <" + hex + ">", "byteLength: " + bytes.length];
    };
  } else {
    let fallback = "Object";
    if (value instanceof Date) {
      base = Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString();
      if (ctorName !== "Date") base = prefix(ctorName, "", "Date") + base;
      if (keys.length === 0) return base;
    } else if (value instanceof RegExp) {
      base = apply(RegExp.prototype.toString, value, []);
      if (keys.length === 0) return base;
    } else if (errorLike(value)) {
      base = errorText(value);
      keys = keys.filter((k) => k !== "stack" && k !== "message");
      if (keys.length === 0) return base;
    } else if (value instanceof Promise) {
      braces = [prefix(ctorName, tag === "Promise" ? "" : tag, "Promise") + "{", "}"];
      extra = ["<unknown>"];
    } else if (value instanceof WeakMap || value instanceof WeakSet) {
      const kind = value instanceof WeakMap ? "WeakMap" : "WeakSet";
      return prefix(ctorName, tag === kind ? "" : tag, kind) + "{ <items unknown> }";
    } else if (typeof value === "object" && tag === "Module" && ctorName === null) {
      braces = ["[Module: null prototype] {", "}"];
    } else if (ctorName === "Object" && tag === "") {
      // plain object
    } else {
      if (isArgumentsObject(value)) { braces = ["[Arguments] [", "]"]; arrayLike = true; }
      fallback = "Object";
    }
    if (braces === undefined) {
      const p = ctorName === "Object" && tag === "" ? "" : prefix(ctorName, tag, fallback);
      braces = [p + "{", "}"];
      if (keys.length === 0) return p + "{}";
    }
    if (base !== "") braces = ["{", "}"];
    formatter = () => extra;
  }
  if (recurseTimes > ctx.depth && ctx.depth !== null) {
    const name = (ctorName || tag || "Object");
    return Array.isArray(value) ? "[Array]" : "[" + name + "]";
  }
  recurseTimes += 1;
  ctx.seen.push(value);
  ctx.currentDepth = recurseTimes;
  let output;
  const hadExtra = ctx.extraItems;
  ctx.extraItems = false;
  try {
    output = formatter();
    for (let i = 0; i < keys.length; i++) {
      output.push(formatProperty(ctx, value, recurseTimes, keys[i], false));
    }
  } finally {
    ctx.seen.pop();
  }
  if (ctx.circular !== undefined) {
    const index = ctx.circular.get(value);
    if (index !== undefined) {
      const ref = "<ref *" + index + ">";
      base = base === "" ? ref : ref + " " + base;
    }
  }
  const res = reduceToSingleString(ctx, output, base, braces, arrayLike, recurseTimes, value);
  ctx.extraItems = hadExtra;
  return res;
};
const isArgumentsObject = (v) => apply(objectProtoToString, v, []) === "[object Arguments]";
const formatArray = (ctx, value, recurseTimes) => {
  const len = value.length, n = Math.min(len, ctx.maxArrayLength), out = [];
  let holes = 0, i = 0, shown = 0;
  for (; i < len && shown < n; i++) {
    if (!Object.prototype.hasOwnProperty.call(value, i)) { holes++; continue; }
    if (holes > 0) {
      out.push("<" + holes + " empty item" + (holes > 1 ? "s" : "") + ">");
      shown++; holes = 0;
      if (shown >= n) break;
    }
    out.push(formatProperty(ctx, value, recurseTimes, i, true));
    shown++;
  }
  if (holes > 0 && shown < n) {
    out.push("<" + holes + " empty item" + (holes > 1 ? "s" : "") + ">");
    shown++;
  }
  const rest = len - i;
  if (rest > 0) {
    out.push("... " + rest + " more item" + (rest > 1 ? "s" : ""));
    ctx.extraItems = true;
  }
  return out;
};
const inspectDefaults = {
  showHidden: false, depth: 2, colors: false, customInspect: true, showProxy: false,
  maxArrayLength: 100, maxStringLength: 10000, breakLength: 80, compact: 3, sorted: false,
  getters: false, numericSeparator: false,
};
const inspectValue = function inspect(value, opts) {
  const ctx = {
    ...inspectDefaults, seen: [], indentationLvl: 0, currentDepth: 0, circular: undefined,
    extraItems: false, options: undefined,
  };
  if (typeof opts === "boolean") ctx.showHidden = opts;
  else if (opts !== null && typeof opts === "object") {
    for (const k of Object.keys(opts)) if (k in inspectDefaults) ctx[k] = opts[k];
  }
  if (arguments.length > 2 && arguments[2] !== undefined) ctx.depth = arguments[2];
  if (ctx.depth === Infinity) ctx.depth = null;
  if (ctx.maxArrayLength === null || ctx.maxArrayLength === Infinity) ctx.maxArrayLength = 2 ** 32;
  if (ctx.breakLength === Infinity) ctx.breakLength = 2 ** 32;
  if (ctx.compact === false) ctx.compact = 0;
  ctx.options = { ...inspectDefaults, showHidden: ctx.showHidden, depth: ctx.depth };
  return formatValue(ctx, value, 0);
};
inspectValue.custom = customInspect;
inspectValue.defaultOptions = inspectDefaults;

const formatWithOptions = (opts, args) => {
  const first = args[0];
  let a = 0, str = "", join = "";
  if (typeof first === "string") {
    if (args.length === 1) return first;
    let tempStr, lastPos = 0;
    for (let i = 0; i < first.length - 1; i++) {
      if (first.charCodeAt(i) !== 37) continue;  // '%'
      const nextChar = first.charCodeAt(++i);
      if (a + 1 !== args.length) {
        switch (nextChar) {
          case 115: {  // 's'
            const arg = args[++a];
            if (typeof arg === "number") tempStr = formatNumber(arg);
            else if (typeof arg === "bigint") tempStr = S(arg) + "n";
            else if (typeof arg !== "object" || arg === null ||
                     (typeof arg.toString === "function" && arg.toString !== Object.prototype.toString &&
                      !errorLike(arg) && Object.prototype.hasOwnProperty.call(arg, "toString"))) {
              tempStr = S(arg);
            } else tempStr = inspectValue(arg, { ...opts, depth: 0, colors: false, compact: 3 });
            break;
          }
          case 106: {  // 'j'
            try { tempStr = stringify(args[++a]); } catch (e) {
              tempStr = "[Circular]";
            }
            break;
          }
          case 100: {  // 'd'
            const n = args[++a];
            if (typeof n === "bigint") tempStr = S(n) + "n";
            else if (typeof n === "symbol") tempStr = "NaN";
            else tempStr = formatNumber(Number(n));
            break;
          }
          case 79: tempStr = inspectValue(args[++a], opts); break;  // 'O'
          case 111: tempStr = inspectValue(args[++a], { ...opts, showHidden: true, showProxy: true, depth: 4 }); break;
          case 105: {  // 'i'
            const n = args[++a];
            if (typeof n === "bigint") tempStr = S(n) + "n";
            else if (typeof n === "symbol") tempStr = "NaN";
            else tempStr = formatNumber(parseInt(n));
            break;
          }
          case 102: {  // 'f'
            const n = args[++a];
            tempStr = typeof n === "symbol" ? "NaN" : formatNumber(parseFloat(n));
            break;
          }
          case 99: a++; tempStr = ""; break;  // 'c'
          case 37: str += first.slice(lastPos, i); lastPos = i + 1; continue;  // '%%'
          default: continue;
        }
        if (lastPos !== i - 1) str += first.slice(lastPos, i - 1);
        str += tempStr;
        lastPos = i + 1;
      } else if (nextChar === 37) {
        str += first.slice(lastPos, i);
        lastPos = i + 1;
      }
    }
    if (lastPos !== 0) {
      a++;
      join = " ";
      if (lastPos < first.length) str += first.slice(lastPos);
    }
  }
  while (a < args.length) {
    const value = args[a];
    str += join;
    str += typeof value !== "string" ? inspectValue(value, opts) : value;
    join = " ";
    a++;
  }
  return str;
};
const formatArgs = function format() {
  const args = [];
  for (let i = 0; i < arguments.length; i++) args.push(arguments[i]);
  return formatWithOptions(undefined, args);
};
