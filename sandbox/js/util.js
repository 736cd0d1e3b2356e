// util.js: the `util` module (format, inspect, promisify, types, isDeepStrictEqual, ...).
const customPromisify = Symbol.for("nodejs.util.promisify.custom");
const promisify = (original) => {
  if (typeof original !== "function") {
    throw typeError("The \"original\" argument must be of type function", "ERR_INVALID_ARG_TYPE");
  }
  const custom = original[customPromisify];
  if (custom !== undefined) {
    if (typeof custom !== "function") {
      throw typeError("The \"util.promisify.custom\" argument must be of type function",
        "ERR_INVALID_ARG_TYPE");
    }
    return custom;
  }
  const fn = function (...args) {
    enter();  // functions made here run with the stack filter on, like the module's own
    try {
      return new Promise((resolve, reject) => {
        apply(original, this, [...args, (err, ...values) => {
          if (err) return reject(err);
          resolve(values[0]);
        }]);
      });
    } finally { leave(); }
  };
  Object.setPrototypeOf(fn, Object.getPrototypeOf(original));
  defineProperty(fn, customPromisify, { value: fn, enumerable: false, writable: false, configurable: true });
  return Object.defineProperties(fn, Object.getOwnPropertyDescriptors(original));
};
promisify.custom = customPromisify;
const callbackify = (original) => {
  if (typeof original !== "function") {
    throw typeError("The \"original\" argument must be of type function", "ERR_INVALID_ARG_TYPE");
  }
  return function (...args) {
    const cb = args.pop();
    if (typeof cb !== "function") {
      throw typeError("The last argument must be of type function", "ERR_INVALID_ARG_TYPE");
    }
    enter();
    let promise;
    try { promise = apply(original, this, args); } finally { leave(); }
    promise.then((v) => queueMicrotask(() => cb(null, v)), (e) => {
      if (!e) {
        const wrapped = new Error("Promise was rejected with a falsy value");
        wrapped.reason = e;
        wrapped.code = "ERR_FALSY_VALUE_REJECTION";
        e = wrapped;
      }
      queueMicrotask(() => cb(e));
    });
  };
};
const tagOf = (v) => apply(objectProtoToString, v, []).slice(8, -1);
const isObj = (v) => v !== null && typeof v === "object";
const typed = (name) => (v) => isView(v) && !(v instanceof DataView) && apply(typedArrayTag, v, []) === name;
const boxed = (proto, probe) => (v) => {
  if (!isObj(v)) return false;
  try { apply(probe, v, []); return true; } catch { return false; }
};
const types = {
  isAnyArrayBuffer: (v) => v instanceof ArrayBuffer || v instanceof SharedArrayBuffer,
  isArrayBuffer: (v) => v instanceof ArrayBuffer,
  isSharedArrayBuffer: (v) => v instanceof SharedArrayBuffer,
  isArrayBufferView: (v) => isView(v),
  isArgumentsObject: (v) => isObj(v) && tagOf(v) === "Arguments",
  isAsyncFunction: (v) => typeof v === "function" && tagOf(v) === "AsyncFunction" ||
    typeof v === "function" && tagOf(v) === "AsyncGeneratorFunction",
  isGeneratorFunction: (v) => typeof v === "function" &&
    (tagOf(v) === "GeneratorFunction" || tagOf(v) === "AsyncGeneratorFunction"),
  isGeneratorObject: (v) => isObj(v) && tagOf(v) === "Generator",
  isBigInt64Array: typed("BigInt64Array"),
  isBigUint64Array: typed("BigUint64Array"),
  isBooleanObject: boxed(Boolean, Boolean.prototype.valueOf),
  isNumberObject: boxed(Number, Number.prototype.valueOf),
  isStringObject: boxed(String, String.prototype.valueOf),
  isSymbolObject: boxed(Symbol, Symbol.prototype.valueOf),
  isBigIntObject: boxed(BigInt, BigInt.prototype.valueOf),
  isBoxedPrimitive: (v) => types.isBooleanObject(v) || types.isNumberObject(v) ||
    types.isStringObject(v) || types.isSymbolObject(v) || types.isBigIntObject(v),
  isDataView: (v) => v instanceof DataView,
  isDate: (v) => v instanceof Date,
  isFloat32Array: typed("Float32Array"),
  isFloat64Array: typed("Float64Array"),
  isInt8Array: typed("Int8Array"),
  isInt16Array: typed("Int16Array"),
  isInt32Array: typed("Int32Array"),
  isUint8Array: typed("Uint8Array"),
  isUint8ClampedArray: typed("Uint8ClampedArray"),
  isUint16Array: typed("Uint16Array"),
  isUint32Array: typed("Uint32Array"),
  isTypedArray: (v) => isView(v) && !(v instanceof DataView),
  isMap: (v) => v instanceof Map,
  isSet: (v) => v instanceof Set,
  isWeakMap: (v) => v instanceof WeakMap,
  isWeakSet: (v) => v instanceof WeakSet,
  isMapIterator: (v) => isObj(v) && tagOf(v) === "Map Iterator",
  isSetIterator: (v) => isObj(v) && tagOf(v) === "Set Iterator",
  isNativeError: (v) => errorLike(v),
  isPromise: (v) => v instanceof Promise,
  isProxy: (v) => false,
  isRegExp: (v) => v instanceof RegExp,
  isModuleNamespaceObject: (v) => isObj(v) && getPrototypeOf(v) === null && v[Symbol.toStringTag] === "Module",
  isExternal: (v) => false,
  isKeyObject: (v) => false,
  isCryptoKey: (v) => false,
};

// isDeepStrictEqual: Node's strict deep equality (prototypes, own enumerable keys, symbols)
const deepEqual = (a, b, memo) => {
  if (a === b) return a !== 0 || Object.is(a, b);
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return typeof a === "number" && typeof b === "number" && a !== a && b !== b;
  }
  if (getPrototypeOf(a) !== getPrototypeOf(b)) return false;
  const tag = tagOf(a);
  if (tag !== tagOf(b)) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (a instanceof Date) { if (a.getTime() !== b.getTime()) return false; }
  else if (a instanceof RegExp) {
    if (a.source !== b.source || a.flags !== b.flags || a.lastIndex !== b.lastIndex) return false;
  } else if (errorLike(a)) {
    if (a.message !== b.message || a.name !== b.name) return false;
  } else if (isView(a)) {
    if (a.byteLength !== b.byteLength) return false;
    if (!(a instanceof DataView)) {
      if (a.length !== b.length) return false;
      for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i]) && !(a[i] === b[i])) return false;
    } else {
      for (let i = 0; i < a.byteLength; i++) if (a.getUint8(i) !== b.getUint8(i)) return false;
    }
  } else if (a instanceof ArrayBuffer) {
    if (a.byteLength !== b.byteLength) return false;
    const x = new U8(a), y = new U8(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  } else if (types.isBoxedPrimitive(a)) {
    if (!Object.is(a.valueOf(), b.valueOf())) return false;
  }
  const keysOf = (o) => ownKeys(o).filter((k) => getDescriptor(o, k).enumerable &&
    !(isView(o) && typeof k === "string" && S(k >>> 0) === k));
  const ka = keysOf(a), kb = keysOf(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!Object.prototype.propertyIsEnumerable.call(b, k)) return false;
  if (memo.has(a) && memo.get(a) === b) return true;
  memo.set(a, b);
  for (const k of ka) if (!deepEqual(a[k], b[k], memo)) return false;
  if (a instanceof Map) {
    if (a.size !== b.size) return false;
    outer: for (const [k, v] of a) {
      if (b.has(k)) { if (!deepEqual(v, b.get(k), memo)) return false; continue; }
      if (typeof k !== "object" || k === null) return false;
      for (const [k2, v2] of b) {
        if (deepEqual(k, k2, memo) && deepEqual(v, v2, memo)) continue outer;
      }
      return false;
    }
  } else if (a instanceof Set) {
    if (a.size !== b.size) return false;
    outer: for (const v of a) {
      if (b.has(v)) continue;
      if (typeof v !== "object" || v === null) return false;
      for (const v2 of b) if (deepEqual(v, v2, memo)) continue outer;
      return false;
    }
  }
  return true;
};
const isDeepStrictEqual = (a, b) => deepEqual(a, b, new Map());
const inherits = (ctor, superCtor) => {
  if (typeof ctor !== "function" || typeof superCtor !== "function" ||
      superCtor.prototype === undefined) {
    throw typeError("The \"ctor\" and \"superCtor\" arguments must be functions with a prototype",
      "ERR_INVALID_ARG_TYPE");
  }
  defineProperty(ctor, "super_", { value: superCtor, writable: true, configurable: true });
  Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
};
const deprecate = (fn, msg, code) => {
  let warned = false;
  return function (...args) {
    if (!warned) { warned = true; console.warn("(node) [" + (code ?? "DEP") + "] DeprecationWarning: " + msg); }
    enter();
    try {
      return new.target ? Reflect.construct(fn, args, new.target) : apply(fn, this, args);
    } finally { leave(); }
  };
};
const utilModule = {
  format: formatArgs,
  formatWithOptions: (opts, ...args) => formatWithOptions(opts, args),
  inspect: inspectValue,
  promisify,
  callbackify,
  types,
  isDeepStrictEqual,
  inherits,
  deprecate,
  isArray: Array.isArray,
  TextEncoder,
  TextDecoder,
};
