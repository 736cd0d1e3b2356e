// crypto.js: the `crypto` module (Node's API, Uint8Array where Node returns a Buffer) and the
// Web Crypto global (getRandomValues, randomUUID, subtle.digest).
const finalized = () => glueError(Error, "Digest already called", "ERR_CRYPTO_HASH_FINALIZED");
const unknownDigest = (name) => glueError(Error, "Digest method not supported");
const hashState = new WeakMap();  // Hash/Hmac object -> internal Digest/Hmac (or null when done)
const state = (self) => {
  const s = hashState.get(self);
  if (s === undefined) throw typeError("Illegal invocation", "ERR_INVALID_THIS");
  if (s === null) throw finalized();
  return s;
};
class Hash {
  constructor(algorithm, options) {
    if (typeof algorithm !== "string") {
      throw typeError("The \"algorithm\" argument must be of type string", "ERR_INVALID_ARG_TYPE");
    }
    const spec = hashSpec(algorithm);
    if (spec === undefined) throw unknownDigest(algorithm);
    hashState.set(this, new Digest(spec));
  }
  update(data, encoding) { state(this).update(bytesOf(data, encoding, "data")); return this; }
  digest(encoding) {
    const out = state(this).digest();
    hashState.set(this, null);
    return encodeBytes(out, encoding);
  }
  copy() {
    const copy = Object.create(Hash.prototype);
    hashState.set(copy, state(this).copy());
    return copy;
  }
}
class Hmac {
  constructor(algorithm, key) {
    if (typeof algorithm !== "string") {
      throw typeError("The \"hmac\" argument must be of type string", "ERR_INVALID_ARG_TYPE");
    }
    const spec = hashSpec(algorithm);
    if (spec === undefined) throw glueError(Error, "Invalid digest: " + algorithm, "ERR_CRYPTO_INVALID_DIGEST");
    hashState.set(this, new HmacState(spec, bytesOf(key, undefined, "key")));
  }
  update(data, encoding) { state(this).update(bytesOf(data, encoding, "data")); return this; }
  digest(encoding) {
    const s = hashState.get(this);
    if (s === undefined) throw typeError("Illegal invocation", "ERR_INVALID_THIS");
    hashState.set(this, null);
    return encodeBytes(s === null ? new U8(0) : s.digest(), encoding);  // Node: empty when done
  }
}
const checkSize = (size, max) => {
  if (typeof size !== "number") {
    throw typeError("The \"size\" argument must be of type number", "ERR_INVALID_ARG_TYPE");
  }
  if (!(size >= 0 && size <= max) || size % 1 !== 0) {
    throw rangeError("The value of \"size\" is out of range. It must be >= 0 && <= " + max +
      ". Received " + S(size), "ERR_OUT_OF_RANGE");
  }
};
const randomBytes = (size, callback) => {
  checkSize(size, 0x7fffffff);
  const bytes = randomFill(new U8(size));
  if (callback === undefined) return bytes;
  if (typeof callback !== "function") {
    throw typeError("The \"callback\" argument must be of type function", "ERR_INVALID_ARG_TYPE");
  }
  queueMicrotask(() => callback(null, bytes));
};
const intTypes = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array,
  Uint32Array, BigInt64Array, BigUint64Array];
const getRandomValues = (array) => {
  if (!intTypes.some((T) => array instanceof T)) {
    throw new DOMException("The data argument must be an integer-type TypedArray",
      "TypeMismatchError");
  }
  if (array.byteLength > 65536) {
    throw new DOMException("The ArrayBufferView's byte length (" + array.byteLength +
      ") exceeds the number of bytes of entropy available via this API (65536)",
      "QuotaExceededError");
  }
  randomFill(new U8(array.buffer, array.byteOffset, array.byteLength));
  return array;
};
const randomInt = (min, max, callback) => {
  if (max === undefined || typeof max === "function") { callback = max; max = min; min = 0; }
  if (!Number.isSafeInteger(min)) throw typeError("The \"min\" argument must be a safe integer", "ERR_INVALID_ARG_TYPE");
  if (!Number.isSafeInteger(max)) throw typeError("The \"max\" argument must be a safe integer", "ERR_INVALID_ARG_TYPE");
  if (!(max > min)) {
    throw rangeError("The value of \"max\" is out of range. It must be greater than the value of " +
      "\"min\" (" + min + "). Received " + max, "ERR_OUT_OF_RANGE");
  }
  const range = max - min;
  if (range > 0xffffffffffff) {
    throw rangeError("The value of \"max - min\" is out of range. It must be <= 281474976710655. " +
      "Received " + range, "ERR_OUT_OF_RANGE");
  }
  const limit = 0x1000000000000 - (0x1000000000000 % range), b = new U8(6);
  let x;
  do {
    randomFill(b);
    x = ((b[0] * 256 + b[1]) * 65536 + (b[2] * 256 + b[3])) * 65536 + b[4] * 256 + b[5];
  } while (x >= limit);
  const value = min + (x % range);
  if (typeof callback !== "function") return value;
  queueMicrotask(() => callback(null, value));
};
const bytesView = (x, name) => {
  if (isView(x)) return new U8(x.buffer, x.byteOffset, x.byteLength);
  if (x instanceof ArrayBuffer) return new U8(x);
  throw typeError("The \"" + name + "\" argument must be an instance of ArrayBuffer, Buffer, " +
    "TypedArray, or DataView.", "ERR_INVALID_ARG_TYPE");
};
const timingSafeEqual = (a, b) => {
  const x = bytesView(a, "buf1"), y = bytesView(b, "buf2");
  if (x.length !== y.length) {
    throw rangeError("Input buffers must have the same byte length", "ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH");
  }
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
};
const SUBTLE_DIGESTS = { __proto__: null, "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384",
  "SHA-512": "sha512" };
const subtle = {
  digest(algorithm, data) {
    try {
      const name = typeof algorithm === "string" ? algorithm : algorithm?.name;
      const key = SUBTLE_DIGESTS[S(name).toUpperCase()];
      if (key === undefined) throw new DOMException("Unrecognized algorithm name", "NotSupportedError");
      const bytes = bytesView(data, "data");
      return Promise.resolve(digestOf(HASHES[key], bytes).buffer);
    } catch (e) {
      return Promise.reject(e);
    }
  },
};
const webcrypto = {
  getRandomValues,
  randomUUID,
  subtle,
};
const cryptoModule = {
  createHash: (algorithm, options) => new Hash(algorithm, options),
  createHmac: (algorithm, key, options) => new Hmac(algorithm, key),
  Hash,
  Hmac,
  getHashes: () => ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"],
  randomBytes,
  randomInt,
  randomUUID: (options) => randomUUID(),
  getRandomValues,
  timingSafeEqual,
  webcrypto,
  subtle,
};
