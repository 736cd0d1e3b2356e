// text.js: TextEncoder and TextDecoder (UTF-8 only, like the Workers runtime).
const decoderState = new WeakMap();
class TextEncoder {
  get encoding() { return "utf-8"; }
  encode(input = "") { return utf8Encode(S(input)); }
  encodeInto(source, destination) {
    if (!(destination instanceof U8)) {
      throw typeError("The \"dest\" argument must be an instance of Uint8Array.", "ERR_INVALID_ARG_TYPE");
    }
    const s = S(source);
    let read = 0, written = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length &&
        s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff;
      const bytes = utf8Encode(pair ? s.slice(i, i + 2) : s[i]);
      if (written + bytes.length > destination.length) break;
      destination.set(bytes, written);
      written += bytes.length;
      read += pair ? 2 : 1;
      if (pair) i++;
    }
    return { read, written };
  }
  get [Symbol.toStringTag]() { return "TextEncoder"; }
}
const LABELS = { __proto__: null };
for (const l of ["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8",
  "x-unicode20utf8"]) LABELS[l] = "utf-8";
for (const l of ["ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819",
  "iso-8859-1", "iso-ir-100", "iso8859-1", "iso88591", "iso_8859-1", "iso_8859-1:1987", "l1",
  "latin1", "us-ascii", "windows-1252", "x-cp1252"]) LABELS[l] = "windows-1252";
for (const l of ["utf-16", "utf-16le", "csunicode", "iso-10646-ucs-2", "ucs-2", "unicode",
  "unicodefeff"]) LABELS[l] = "utf-16le";
// windows-1252 bytes 0x80-0x9f (the others are Latin-1)
const CP1252 = [0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030,
  0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013,
  0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178];
const decode1252 = (bytes) => {
  let s = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    s += fromCharCode(b >= 0x80 && b < 0xa0 ? CP1252[b - 0x80] : b);
  }
  return s;
};
const decode16 = (bytes, fatal, stream) => {
  const n = bytes.length & ~1, units = [];
  for (let i = 0; i < n; i += 2) units.push(bytes[i] | (bytes[i + 1] << 8));
  let text = "";
  for (let i = 0; i < units.length; i++) {
    const c = units[i];
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < units.length && units[i + 1] >= 0xdc00 && units[i + 1] <= 0xdfff) {
      text += fromCharCode(c, units[++i]);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      if (fatal) throw typeError("The encoded data was not valid for encoding utf-16le", "ERR_ENCODING_INVALID_ENCODED_DATA");
      text += "\ufffd";
    } else text += fromCharCode(c);
  }
  if (n !== bytes.length) {
    if (stream) return [text, bytes.slice(n)];
    if (fatal) throw typeError("The encoded data was not valid for encoding utf-16le", "ERR_ENCODING_INVALID_ENCODED_DATA");
    text += "\ufffd";
  }
  return [text, null];
};
class TextDecoder {
  constructor(label = "utf-8", options = {}) {
    const name = LABELS[S(label).trim().toLowerCase()];
    if (name === undefined) {
      throw rangeError("The \"" + S(label) + "\" encoding is not supported", "ERR_ENCODING_NOT_SUPPORTED");
    }
    const opts = options ?? {};
    decoderState.set(this, { encoding: name, fatal: !!opts.fatal, ignoreBOM: !!opts.ignoreBOM,
      rest: null, bomSeen: false });
  }
  get encoding() { return decoderState.get(this).encoding; }
  get fatal() { return decoderState.get(this).fatal; }
  get ignoreBOM() { return decoderState.get(this).ignoreBOM; }
  decode(input, options) {
    const st = decoderState.get(this);
    if (st === undefined) throw typeError("Illegal invocation", "ERR_INVALID_THIS");
    let bytes = input === undefined ? new U8(0) : bytesView(input, "input");
    if (st.rest !== null) {
      const joined = new U8(st.rest.length + bytes.length);
      joined.set(st.rest); joined.set(bytes, st.rest.length);
      bytes = joined;
      st.rest = null;
    }
    const stream = !!(options && options.stream);
    if (st.encoding === "windows-1252") return decode1252(bytes);
    const utf8 = st.encoding === "utf-8";
    if (!st.ignoreBOM && !st.bomSeen) {
      if (utf8 && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
        bytes = bytes.subarray(3);
      } else if (!utf8 && bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) {
        bytes = bytes.subarray(2);
      }
    }
    if (bytes.length > 0) st.bomSeen = true;
    let text, rest;
    try {
      [text, rest] = (utf8 ? utf8Decode : decode16)(bytes, st.fatal, stream);
    } catch (e) { st.bomSeen = false; throw e; }
    st.rest = rest;
    if (!stream) st.bomSeen = false;
    return text;
  }
  get [Symbol.toStringTag]() { return "TextDecoder"; }
}
