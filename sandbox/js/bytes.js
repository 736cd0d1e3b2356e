// bytes.js: UTF-8, hex and base64 over Uint8Array; argument checks shared by the modules.
const U8 = Uint8Array;
const fromCharCode = String.fromCharCode;
const isView = ArrayBuffer.isView;
const typeError = (message, code) => glueError(TypeError, message, code);
const rangeError = (message, code) => glueError(RangeError, message, code);

const utf8Encode = (s) => {
  const n = s.length;
  const out = new U8(n * 3);
  let j = 0;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) { out[j++] = c; continue; }
    if (c < 0x800) { out[j++] = 0xc0 | (c >> 6); out[j++] = 0x80 | (c & 63); continue; }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        out[j++] = 0xf0 | (c >> 18); out[j++] = 0x80 | ((c >> 12) & 63);
        out[j++] = 0x80 | ((c >> 6) & 63); out[j++] = 0x80 | (c & 63);
        continue;
      }
      c = 0xfffd;
    }
    out[j++] = 0xe0 | (c >> 12); out[j++] = 0x80 | ((c >> 6) & 63); out[j++] = 0x80 | (c & 63);
  }
  return out.slice(0, j);
};

// WHATWG UTF-8 decode (maximal subparts become U+FFFD); returns [text, bytes left over].
const utf8Decode = (bytes, fatal, stream) => {
  const units = [];
  let text = "", needed = 0, seen = 0, cp = 0, lower = 0x80, upper = 0xbf, start = 0;
  const bad = () => {
    if (fatal) throw typeError("The encoded data was not valid for encoding utf-8",
      "ERR_ENCODING_INVALID_ENCODED_DATA");
    units.push(0xfffd);
  };
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if (needed === 0) {
      start = i;
      if (b < 0x80) units.push(b);
      else if (b >= 0xc2 && b <= 0xdf) { needed = 1; cp = b & 0x1f; }
      else if (b >= 0xe0 && b <= 0xef) {
        if (b === 0xe0) lower = 0xa0;
        if (b === 0xed) upper = 0x9f;
        needed = 2; cp = b & 0xf;
      } else if (b >= 0xf0 && b <= 0xf4) {
        if (b === 0xf0) lower = 0x90;
        if (b === 0xf4) upper = 0x8f;
        needed = 3; cp = b & 7;
      } else bad();
    } else if (b < lower || b > upper) {
      cp = needed = seen = 0; lower = 0x80; upper = 0xbf;
      bad();
      i--;
    } else {
      lower = 0x80; upper = 0xbf;
      cp = (cp << 6) | (b & 0x3f);
      if (++seen === needed) {
        if (cp > 0xffff) {
          cp -= 0x10000;
          units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
        } else units.push(cp);
        cp = needed = seen = 0;
      }
    }
    if (units.length > 8000) { text += apply(fromCharCode, null, units); units.length = 0; }
  }
  let rest = null;
  if (needed !== 0) {
    if (stream) rest = bytes.slice(start);
    else bad();
  }
  return [text + apply(fromCharCode, null, units), rest];
};

const HEX = "0123456789abcdef";
const toHex = (bytes) => {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i] >> 4] + HEX[bytes[i] & 15];
  return s;
};
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const toBase64 = (bytes, url) => {
  const t = url ? B64URL : B64;
  let s = "", i = 0;
  const n = bytes.length;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    s += t[v >> 18] + t[(v >> 12) & 63] + t[(v >> 6) & 63] + t[v & 63];
  }
  if (i < n) {
    const v = (bytes[i] << 16) | (i + 1 < n ? bytes[i + 1] << 8 : 0);
    s += t[v >> 18] + t[(v >> 12) & 63];
    s += i + 1 < n ? t[(v >> 6) & 63] + (url ? "" : "=") : url ? "" : "==";
  }
  return s;
};
const fromBase64 = (s) => {  // lenient like Node: skips characters outside the alphabet
  const out = [];
  let acc = 0, bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    let v = B64.indexOf(c);
    if (v < 0) v = c === "-" ? 62 : c === "_" ? 63 : -1;
    if (c === "=") break;
    if (v < 0) continue;
    acc = (acc << 6) | v; bits += 6;
    if (bits >= 8) { bits -= 8; out.push((acc >> bits) & 255); }
  }
  return new U8(out);
};
const fromHex = (s) => {
  const n = s.length >> 1, out = [];
  for (let i = 0; i < n; i++) {
    const v = parseInt(s.substr(2 * i, 2), 16);
    if (v !== v) break;
    out.push(v);
  }
  return new U8(out);
};
const latin1 = (bytes) => {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8000) {
    s += apply(fromCharCode, null, bytes.subarray(i, i + 8000));
  }
  return s;
};
const fromLatin1 = (s) => {
  const out = new U8(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
};

// bytes of a string in one of Node's encodings, or of a buffer-like value
const ENCODINGS = ["utf8", "utf-8", "hex", "base64", "base64url", "latin1", "binary", "ascii"];
const checkEncoding = (enc) => {
  const e = S(enc).toLowerCase();
  if (!ENCODINGS.includes(e)) throw typeError("Unknown encoding: " + S(enc), "ERR_UNKNOWN_ENCODING");
  return e;
};
const bytesOf = (data, enc, what) => {
  if (typeof data === "string") {
    const e = enc === undefined || enc === null ? "utf8" : checkEncoding(enc);
    if (e === "hex") return fromHex(data);
    if (e === "base64" || e === "base64url") return fromBase64(data);
    if (e === "latin1" || e === "binary" || e === "ascii") return fromLatin1(data);
    return utf8Encode(data);
  }
  if (isView(data)) return new U8(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new U8(data);
  throw typeError("The \"" + what + "\" argument must be of type string or an instance of " +
    "ArrayBuffer, TypedArray or DataView", "ERR_INVALID_ARG_TYPE");
};
const encodeBytes = (bytes, enc) => {
  if (enc === undefined) return bytes;
  const e = checkEncoding(enc);
  if (e === "hex") return toHex(bytes);
  if (e === "base64") return toBase64(bytes, false);
  if (e === "base64url") return toBase64(bytes, true);
  if (e === "latin1" || e === "binary") return latin1(bytes);
  if (e === "ascii") return latin1(bytes.map((b) => b & 0x7f));
  return utf8Decode(bytes, false, false)[0];
};
