// url.js: URL and URLSearchParams after the WHATWG URL Standard (basic URL parser with state
// overrides for the setters). Hosts: IPv4, IPv6, opaque hosts; domains are lower-cased and
// non-ASCII labels Punycode-encoded (no full UTS #46 mapping).
const SPECIAL = { __proto__: null, "ftp:": 21, "file:": null, "http:": 80, "https:": 443, "ws:": 80, "wss:": 443 };
const isSpecialScheme = (s) => (s + ":") in SPECIAL;
const ALPHA = /[A-Za-z]/, ALNUM_PLUS = /[A-Za-z0-9+\-.]/, DIGIT = /[0-9]/, HEXDIGIT = /[0-9A-Fa-f]/;
const C0 = (c) => c < 0x20 || c > 0x7e;
const FRAGMENT_SET = (c) => C0(c) || c === 0x20 || c === 0x22 || c === 0x3c || c === 0x3e || c === 0x60;
const QUERY_SET = (c) => C0(c) || c === 0x20 || c === 0x22 || c === 0x23 || c === 0x3c || c === 0x3e;
const SPECIAL_QUERY_SET = (c) => QUERY_SET(c) || c === 0x27;
const PATH_SET = (c) => QUERY_SET(c) || c === 0x3f || c === 0x5e || c === 0x60 || c === 0x7b || c === 0x7d;
const USERINFO_SET = (c) => PATH_SET(c) || c === 0x2f || c === 0x3a || c === 0x3b || c === 0x3d ||
  c === 0x40 || (c >= 0x5b && c <= 0x5d) || c === 0x7c;
const COMPONENT_SET = (c) => USERINFO_SET(c) || (c >= 0x24 && c <= 0x26) || c === 0x2b || c === 0x2c;
const FORM_SET = (c) => COMPONENT_SET(c) || c === 0x21 || (c >= 0x27 && c <= 0x29) || c === 0x7e;
const HEXU = "0123456789ABCDEF";
const percentEncode = (s, set, spaceAsPlus) => {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (spaceAsPlus && c === 0x20) { out += "+"; continue; }
    if (!set(c)) { out += ch; continue; }
    const bytes = utf8Encode(ch);
    for (let i = 0; i < bytes.length; i++) out += "%" + HEXU[bytes[i] >> 4] + HEXU[bytes[i] & 15];
  }
  return out;
};
const percentDecodeBytes = (bytes) => {
  const out = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x25 && i + 2 < bytes.length && isHexByte(bytes[i + 1]) && isHexByte(bytes[i + 2])) {
      out.push(parseInt(fromCharCode(bytes[i + 1], bytes[i + 2]), 16));
      i += 2;
    } else out.push(b);
  }
  return new U8(out);
};
const isHexByte = (b) => (b >= 48 && b <= 57) || (b >= 65 && b <= 70) || (b >= 97 && b <= 102);
const percentDecode = (s) => utf8Decode(percentDecodeBytes(utf8Encode(s)), false, false)[0];

// Punycode (RFC 3492) encoder for domain labels
const punycode = (label) => {
  const cps = Array.from(label, (c) => c.codePointAt(0));
  let out = "", n = 128, delta = 0, bias = 72, h = 0;
  for (const c of cps) if (c < 128) { out += fromCharCode(c); h++; }
  const b = h;
  if (b > 0) out += "-";
  const digit = (d) => fromCharCode(d + 22 + 75 * (d < 26));
  const adapt = (delta, numPoints, first) => {
    delta = first ? Math.floor(delta / 700) : delta >> 1;
    delta += Math.floor(delta / numPoints);
    let k = 0;
    while (delta > 455) { delta = Math.floor(delta / 35); k += 36; }
    return k + Math.floor((36 * delta) / (delta + 38));
  };
  while (h < cps.length) {
    let m = Infinity;
    for (const c of cps) if (c >= n && c < m) m = c;
    delta += (m - n) * (h + 1);
    n = m;
    for (const c of cps) {
      if (c < n) delta++;
      if (c === n) {
        let q = delta;
        for (let k = 36; ; k += 36) {
          const t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
          if (q < t) break;
          out += digit(t + ((q - t) % (36 - t)));
          q = Math.floor((q - t) / (36 - t));
        }
        out += digit(q);
        bias = adapt(delta, h + 1, h === b);
        delta = 0;
        h++;
      }
    }
    delta++; n++;
  }
  return out;
};
const FORBIDDEN_HOST = /[\0\t\n\r #/:<>?@[\\\]^|]/;
const FORBIDDEN_DOMAIN = /[\0-\x1f #%/:<>?@[\\\]^|\x7f]/;
const domainToASCII = (domain) => {
  const mapped = domain.normalize("NFC").toLowerCase().replace(/[\u3002\uff0e\uff61]/g, ".")
    .replace(/[\u00ad\u200b-\u200d\u2060\ufeff]/g, "");
  if (mapped === "") return null;
  const labels = mapped.split(".").map((l) => (/^[\0-\x7f]*$/.test(l) ? l : "xn--" + punycode(l)));
  return labels.join(".");
};
const parseIPv4Number = (s) => {
  if (s === "") return NaN;
  let radix = 10;
  if (s.length >= 2 && (s.startsWith("0x") || s.startsWith("0X"))) { s = s.slice(2); radix = 16; }
  else if (s.length >= 2 && s[0] === "0") { s = s.slice(1); radix = 8; }
  if (s === "") return 0;
  const re = radix === 10 ? /^[0-9]+$/ : radix === 16 ? /^[0-9A-Fa-f]+$/ : /^[0-7]+$/;
  return re.test(s) ? parseInt(s, radix) : NaN;
};
const endsInNumber = (s) => {
  const parts = s.split(".");
  if (parts[parts.length - 1] === "") { if (parts.length === 1) return false; parts.pop(); }
  const last = parts[parts.length - 1];
  if (last !== "" && /^[0-9]+$/.test(last)) return true;
  return !Number.isNaN(parseIPv4Number(last)) && /^0[xX]/.test(last) || /^0[xX]$/.test(last);
};
const parseIPv4 = (s) => {
  const parts = s.split(".");
  if (parts[parts.length - 1] === "" && parts.length > 1) parts.pop();
  if (parts.length > 4) return null;
  const nums = parts.map(parseIPv4Number);
  if (nums.some((n) => Number.isNaN(n))) return null;
  for (let i = 0; i < nums.length - 1; i++) if (nums[i] > 255) return null;
  if (nums[nums.length - 1] >= 256 ** (5 - nums.length)) return null;
  let ipv4 = nums[nums.length - 1];
  for (let i = 0; i < nums.length - 1; i++) ipv4 += nums[i] * 256 ** (3 - i);
  return ipv4;
};
const serializeIPv4 = (n) => {
  const out = [];
  for (let i = 0; i < 4; i++) { out.unshift(S(n % 256)); n = Math.floor(n / 256); }
  return out.join(".");
};
const parseIPv6 = (input) => {
  const address = [0, 0, 0, 0, 0, 0, 0, 0];
  let pieceIndex = 0, compress = null, p = 0;
  const c = (i) => input[i];
  if (c(p) === ":") {
    if (c(p + 1) !== ":") return null;
    p += 2; compress = ++pieceIndex;
  }
  while (c(p) !== undefined) {
    if (pieceIndex === 8) return null;
    if (c(p) === ":") {
      if (compress !== null) return null;
      p++; compress = ++pieceIndex;
      continue;
    }
    let value = 0, length = 0;
    while (length < 4 && c(p) !== undefined && HEXDIGIT.test(c(p))) {
      value = value * 16 + parseInt(c(p), 16); p++; length++;
    }
    if (c(p) === ".") {
      if (length === 0) return null;
      p -= length;
      if (pieceIndex > 6) return null;
      let numbersSeen = 0;
      while (c(p) !== undefined) {
        let ipv4Piece = null;
        if (numbersSeen > 0) {
          if (c(p) === "." && numbersSeen < 4) p++;
          else return null;
        }
        if (c(p) === undefined || !DIGIT.test(c(p))) return null;
        while (c(p) !== undefined && DIGIT.test(c(p))) {
          const number = parseInt(c(p), 10);
          if (ipv4Piece === null) ipv4Piece = number;
          else if (ipv4Piece === 0) return null;
          else ipv4Piece = ipv4Piece * 10 + number;
          if (ipv4Piece > 255) return null;
          p++;
        }
        address[pieceIndex] = address[pieceIndex] * 256 + ipv4Piece;
        numbersSeen++;
        if (numbersSeen === 2 || numbersSeen === 4) pieceIndex++;
      }
      if (numbersSeen !== 4) return null;
      break;
    } else if (c(p) === ":") {
      p++;
      if (c(p) === undefined) return null;
    } else if (c(p) !== undefined) return null;
    address[pieceIndex++] = value;
  }
  if (compress !== null) {
    let swaps = pieceIndex - compress;
    pieceIndex = 7;
    while (pieceIndex !== 0 && swaps > 0) {
      const t = address[compress + swaps - 1];
      address[compress + swaps - 1] = address[pieceIndex];
      address[pieceIndex] = t;
      pieceIndex--; swaps--;
    }
  } else if (pieceIndex !== 8) return null;
  return address;
};
const serializeIPv6 = (a) => {
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (a[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && a[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  let out = "", ignore0 = false;
  for (let i = 0; i < 8; i++) {
    if (ignore0 && a[i] === 0) continue;
    ignore0 = false;
    if (best === i) { out += i === 0 ? "::" : ":"; ignore0 = true; continue; }
    out += a[i].toString(16);
    if (i !== 7) out += ":";
  }
  return "[" + out + "]";
};
const parseHost = (input, notSpecial) => {
  if (input[0] === "[") {
    if (input[input.length - 1] !== "]") return null;
    const a = parseIPv6(input.slice(1, -1));
    return a === null ? null : serializeIPv6(a);
  }
  if (notSpecial) {
    if (FORBIDDEN_HOST.test(input)) return null;
    return percentEncode(input, C0, false);
  }
  const ascii = domainToASCII(percentDecode(input));
  if (ascii === null || FORBIDDEN_DOMAIN.test(ascii)) return null;
  if (endsInNumber(ascii)) {
    const n = parseIPv4(ascii);
    return n === null ? null : serializeIPv4(n);
  }
  return ascii;
};
const SINGLE_DOT = /^(\.|%2e)$/i, DOUBLE_DOT = /^(\.|%2e)(\.|%2e)$/i;
const isDriveLetter = (s, normalized) => s.length === 2 && ALPHA.test(s[0]) &&
  (s[1] === ":" || (!normalized && s[1] === "|"));
const startsWithDriveLetter = (s, p) => s.length - p >= 2 && isDriveLetter(s.slice(p, p + 2), false) &&
  (s.length - p === 2 || "/\\?#".includes(s[p + 2]));
const shortenPath = (url) => {
  const path = url.path;
  if (url.scheme === "file" && path.length === 1 && isDriveLetter(path[0], true)) return;
  path.pop();
};
const newRecord = () => ({ scheme: "", username: "", password: "", host: null, port: null,
  path: [], query: null, fragment: null, opaque: false });

const FAIL = null;
// The basic URL parser. Returns a record, or FAIL; with `override`, mutates `url` and returns
// it (or FAIL / the unchanged url where the standard says "return").
const parseURL = (input, base, url, override) => {
  if (url === undefined) {
    url = newRecord();
    input = input.replace(/^[\0- ]+|[\0- ]+$/g, "");
  }
  input = input.replace(/[\t\n\r]/g, "");
  let state = override || "scheme start", buffer = "", atSign = false, insideBrackets = false;
  let passwordTokenSeen = false;
  const cps = Array.from(input);
  for (let p = 0; p <= cps.length; p++) {
    const c = cps[p];  // undefined: EOF
    const special = isSpecialScheme(url.scheme);
    switch (state) {
      case "scheme start":
        if (c !== undefined && ALPHA.test(c)) { buffer += c.toLowerCase(); state = "scheme"; }
        else if (!override) { state = "no scheme"; p--; }
        else return FAIL;
        break;
      case "scheme":
        if (c !== undefined && ALNUM_PLUS.test(c)) buffer += c.toLowerCase();
        else if (c === ":") {
          if (override) {
            if (isSpecialScheme(url.scheme) !== isSpecialScheme(buffer)) return url;
            if ((url.username !== "" || url.password !== "" || url.port !== null) && buffer === "file") return url;
            if (url.scheme === "file" && url.host === "") return url;
          }
          url.scheme = buffer;
          if (override) {
            if (url.port === SPECIAL[url.scheme + ":"]) url.port = null;
            return url;
          }
          buffer = "";
          if (url.scheme === "file") state = "file";
          else if (isSpecialScheme(url.scheme) && base && base.scheme === url.scheme) state = "special relative or authority";
          else if (isSpecialScheme(url.scheme)) state = "special authority slashes";
          else if (cps[p + 1] === "/") { state = "path or authority"; p++; }
          else { url.opaque = true; url.path = ""; state = "opaque path"; }
        } else if (!override) { buffer = ""; state = "no scheme"; p = -1; }
        else return FAIL;
        break;
      case "no scheme":
        if (!base || (base.opaque && c !== "#")) return FAIL;
        if (base.opaque && c === "#") {
          url.scheme = base.scheme; url.path = base.path; url.opaque = true;
          url.query = base.query; url.fragment = ""; state = "fragment";
        } else if (base.scheme !== "file") { state = "relative"; p--; }
        else { state = "file"; p--; }
        break;
      case "special relative or authority":
        if (c === "/" && cps[p + 1] === "/") { state = "special authority ignore slashes"; p++; }
        else { state = "relative"; p--; }
        break;
      case "path or authority":
        if (c === "/") state = "authority";
        else { state = "path"; p--; }
        break;
      case "relative":
        url.scheme = base.scheme;
        if (c === "/") state = "relative slash";
        else if (special && c === "\\") state = "relative slash";
        else {
          url.username = base.username; url.password = base.password; url.host = base.host;
          url.port = base.port; url.path = base.path.slice(); url.query = base.query;
          if (c === "?") { url.query = ""; state = "query"; }
          else if (c === "#") { url.fragment = ""; state = "fragment"; }
          else if (c !== undefined) { url.query = null; shortenPath(url); state = "path"; p--; }
        }
        break;
      case "relative slash":
        if (special && (c === "/" || c === "\\")) state = "special authority ignore slashes";
        else if (c === "/") state = "authority";
        else {
          url.username = base.username; url.password = base.password; url.host = base.host;
          url.port = base.port; state = "path"; p--;
        }
        break;
      case "special authority slashes":
        if (c === "/" && cps[p + 1] === "/") { state = "special authority ignore slashes"; p++; }
        else { state = "special authority ignore slashes"; p--; }
        break;
      case "special authority ignore slashes":
        if (c !== "/" && c !== "\\") { state = "authority"; p--; }
        break;
      case "authority":
        if (c === "@") {
          if (atSign) buffer = "%40" + buffer;
          atSign = true;
          for (const ch of buffer) {
            if (ch === ":" && !passwordTokenSeen) { passwordTokenSeen = true; continue; }
            const enc = percentEncode(ch, USERINFO_SET, false);
            if (passwordTokenSeen) url.password += enc; else url.username += enc;
          }
          buffer = "";
        } else if (c === undefined || c === "/" || c === "?" || c === "#" || (special && c === "\\")) {
          if (atSign && buffer === "") return FAIL;
          p -= Array.from(buffer).length + 1;
          buffer = "";
          state = "host";
        } else buffer += c;
        break;
      case "host":
      case "hostname":
        if (override && url.scheme === "file") { p--; state = "file host"; }
        else if (c === ":" && !insideBrackets) {
          if (buffer === "") return FAIL;
          if (override === "hostname") return FAIL;
          const host = parseHost(buffer, !special);
          if (host === null) return FAIL;
          url.host = host; buffer = ""; state = "port";
        } else if (c === undefined || c === "/" || c === "?" || c === "#" || (special && c === "\\")) {
          p--;
          if (special && buffer === "") return FAIL;
          if (override && buffer === "" && (url.username !== "" || url.password !== "" || url.port !== null)) return FAIL;
          const host = parseHost(buffer, !special);
          if (host === null) return FAIL;
          url.host = host; buffer = ""; state = "path start";
          if (override) return url;
        } else {
          if (c === "[") insideBrackets = true;
          if (c === "]") insideBrackets = false;
          buffer += c;
        }
        break;
      case "port":
        if (c !== undefined && DIGIT.test(c)) buffer += c;
        else if (c === undefined || c === "/" || c === "?" || c === "#" || (special && c === "\\") || override) {
          if (buffer !== "") {
            const port = parseInt(buffer, 10);
            if (port > 65535) return FAIL;
            url.port = SPECIAL[url.scheme + ":"] === port ? null : port;
            buffer = "";
          }
          if (override) return url;
          state = "path start"; p--;
        } else return FAIL;
        break;
      case "file":
        url.scheme = "file";
        url.host = "";
        if (c === "/" || c === "\\") state = "file slash";
        else if (base && base.scheme === "file") {
          url.host = base.host; url.path = base.path.slice(); url.query = base.query;
          if (c === "?") { url.query = ""; state = "query"; }
          else if (c === "#") { url.fragment = ""; state = "fragment"; }
          else if (c !== undefined) {
            url.query = null;
            if (!startsWithDriveLetter(cps.join(""), p)) shortenPath(url);
            else url.path = [];
            state = "path"; p--;
          }
        } else { state = "path"; p--; }
        break;
      case "file slash":
        if (c === "/" || c === "\\") state = "file host";
        else {
          if (base && base.scheme === "file") {
            url.host = base.host;
            if (!startsWithDriveLetter(cps.join(""), p) && base.path.length > 0 && isDriveLetter(base.path[0], true)) {
              url.path.push(base.path[0]);
            }
          }
          state = "path"; p--;
        }
        break;
      case "file host":
        if (c === undefined || c === "/" || c === "\\" || c === "?" || c === "#") {
          p--;
          if (!override && isDriveLetter(buffer, false)) state = "path";
          else if (buffer === "") {
            url.host = "";
            if (override) return url;
            state = "path start";
          } else {
            let host = parseHost(buffer, false);
            if (host === null) return FAIL;
            if (host === "localhost") host = "";
            url.host = host;
            if (override) return url;
            buffer = ""; state = "path start";
          }
        } else buffer += c;
        break;
      case "path start":
        if (special) { state = "path"; if (c !== "/" && c !== "\\") p--; }
        else if (!override && c === "?") { url.query = ""; state = "query"; }
        else if (!override && c === "#") { url.fragment = ""; state = "fragment"; }
        else if (c !== undefined) { state = "path"; if (c !== "/") p--; }
        else if (override && url.host === null) url.path.push("");
        break;
      case "path":
        if (c === undefined || c === "/" || (special && c === "\\") || (!override && (c === "?" || c === "#"))) {
          const slash = c === "/" || (special && c === "\\");
          if (DOUBLE_DOT.test(buffer)) {
            shortenPath(url);
            if (!slash) url.path.push("");
          } else if (SINGLE_DOT.test(buffer) && !slash) url.path.push("");
          else if (!SINGLE_DOT.test(buffer)) {
            if (url.scheme === "file" && url.path.length === 0 && isDriveLetter(buffer, false)) {
              buffer = buffer[0] + ":";
            }
            url.path.push(buffer);
          }
          buffer = "";
          if (c === "?") { url.query = ""; state = "query"; }
          if (c === "#") { url.fragment = ""; state = "fragment"; }
        } else buffer += percentEncode(c, PATH_SET, false);
        break;
      case "opaque path":
        if (c === "?") { url.query = ""; state = "query"; }
        else if (c === "#") { url.fragment = ""; state = "fragment"; }
        else if (c !== undefined) url.path += percentEncode(c, C0, false);
        break;
      case "query":
        if ((!override && c === "#") || c === undefined) {
          url.query += percentEncode(buffer, special ? SPECIAL_QUERY_SET : QUERY_SET, false);
          buffer = "";
          if (c === "#") { url.fragment = ""; state = "fragment"; }
        } else buffer += c;
        break;
      case "fragment":
        if (c !== undefined) url.fragment += percentEncode(c, FRAGMENT_SET, false);
        break;
    }
  }
  return url;
};
const serializeURL = (url, excludeFragment) => {
  let out = url.scheme + ":";
  if (url.host !== null) {
    out += "//";
    if (url.username !== "" || url.password !== "") {
      out += url.username;
      if (url.password !== "") out += ":" + url.password;
      out += "@";
    }
    out += url.host;
    if (url.port !== null) out += ":" + url.port;
  }
  out += serializePath(url);
  if (url.query !== null) out += "?" + url.query;
  if (!excludeFragment && url.fragment !== null) out += "#" + url.fragment;
  return out;
};
const serializePath = (url) => {
  if (url.opaque) return url.path;
  let out = "";
  if (url.host === null && url.path.length > 1 && url.path[0] === "") out += "/.";
  for (const segment of url.path) out += "/" + segment;
  return out;
};

// application/x-www-form-urlencoded
const parseForm = (input) => {
  const out = [];
  for (const seq of input.split("&")) {
    if (seq === "") continue;
    const i = seq.indexOf("=");
    const name = i < 0 ? seq : seq.slice(0, i), value = i < 0 ? "" : seq.slice(i + 1);
    out.push([percentDecode(name.replace(/\+/g, " ")), percentDecode(value.replace(/\+/g, " "))]);
  }
  return out;
};
const toUSV = (v) => S(v).toWellFormed();
const serializeForm = (list) =>
  list.map(([k, v]) => percentEncode(k, FORM_SET, true) + "=" + percentEncode(v, FORM_SET, true)).join("&");

const urlRecords = new WeakMap(), paramsLists = new WeakMap();
const record = (self) => {
  const r = urlRecords.get(self);
  if (r === undefined) throw typeError("Illegal invocation", "ERR_INVALID_THIS");
  return r;
};
const invalidURL = (input) => {
  const e = glueError(TypeError, "Invalid URL", "ERR_INVALID_URL");
  e.input = input;
  return e;
};
class URLSearchParams {
  constructor(init = "") {
    let list = [];
    if (init !== null && typeof init === "object" || typeof init === "function") {
      if (paramsLists.has(init)) list = paramsLists.get(init).list.map((p) => p.slice());
      else if (typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const p = Array.from(pair);
          if (p.length !== 2) {
            throw typeError("Each query pair must be an iterable [name, value] tuple", "ERR_INVALID_TUPLE");
          }
          list.push([toUSV(p[0]), toUSV(p[1])]);
        }
      } else {
        for (const key of ownKeys(init)) {
          const d = getDescriptor(init, key);
          if (d !== undefined && d.enumerable && typeof key === "string") list.push([toUSV(key), toUSV(init[key])]);
        }
      }
    } else {
      let s = toUSV(init);
      if (s[0] === "?") s = s.slice(1);
      list = parseForm(s);
    }
    paramsLists.set(this, { list, url: null });
  }
  get size() { return paramsLists.get(this).list.length; }
  append(name, value) { const st = paramsOf(this); st.list.push([toUSV(name), toUSV(value)]); updateURL(st); }
  delete(name, value) {
    const st = paramsOf(this), n = toUSV(name), v = value === undefined ? undefined : toUSV(value);
    st.list = st.list.filter(([k, x]) => !(k === n && (v === undefined || x === v)));
    updateURL(st);
  }
  get(name) { const n = toUSV(name), hit = paramsOf(this).list.find(([k]) => k === n); return hit ? hit[1] : null; }
  getAll(name) { const n = toUSV(name); return paramsOf(this).list.filter(([k]) => k === n).map((p) => p[1]); }
  has(name, value) {
    const n = toUSV(name), v = value === undefined ? undefined : toUSV(value);
    return paramsOf(this).list.some(([k, x]) => k === n && (v === undefined || x === v));
  }
  set(name, value) {
    const st = paramsOf(this), n = toUSV(name), v = toUSV(value);
    const i = st.list.findIndex(([k]) => k === n);
    if (i < 0) st.list.push([n, v]);
    else {
      st.list[i][1] = v;
      st.list = st.list.filter(([k], j) => j <= i || k !== n);
    }
    updateURL(st);
  }
  sort() {
    const st = paramsOf(this);
    const keyed = st.list.map((p, i) => [p, i]);
    keyed.sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1]));
    st.list = keyed.map((x) => x[0]);
    updateURL(st);
  }
  forEach(callback, thisArg) {
    checkCallback(callback);
    const st = paramsOf(this);
    for (let i = 0; i < st.list.length; i++) apply(callback, thisArg, [st.list[i][1], st.list[i][0], this]);
  }
  *entries() { const st = paramsOf(this); for (let i = 0; i < st.list.length; i++) yield [st.list[i][0], st.list[i][1]]; }
  *keys() { for (const [k] of this.entries()) yield k; }
  *values() { for (const [, v] of this.entries()) yield v; }
  [Symbol.iterator]() { return this.entries(); }
  toString() { return serializeForm(paramsOf(this).list); }
  get [Symbol.toStringTag]() { return "URLSearchParams"; }
  [customInspect](depth, options, inspect) {
    const list = paramsOf(this).list;
    if (list.length === 0) return "URLSearchParams {}";
    return "URLSearchParams { " + list.map(([k, v]) => inspectValue(k) + " => " + inspectValue(v)).join(", ") + " }";
  }
}
const paramsOf = (self) => {
  const st = paramsLists.get(self);
  if (st === undefined) throw typeError("Illegal invocation", "ERR_INVALID_THIS");
  return st;
};
const updateURL = (st) => {
  if (st.url === null) return;
  const r = urlRecords.get(st.url);
  const q = serializeForm(st.list);
  r.query = q === "" ? null : q;
  if (q === "") stripTrailingSpaces(r);
};
const stripTrailingSpaces = (r) => {
  if (!r.opaque || r.fragment !== null || r.query !== null) return;
  r.path = r.path.replace(/ +$/, "");
};
const searchParamsOf = new WeakMap();
const syncParams = (self, r) => {
  const params = searchParamsOf.get(self);
  if (params !== undefined) paramsLists.get(params).list = r.query === null ? [] : parseForm(r.query);
};
const baseRecord = (base) => {
  if (base === undefined) return undefined;
  const b = parseURL(toUSV(base), undefined);
  if (b === FAIL) throw invalidURL(S(base));
  return b;
};
class URL {
  constructor(url, base) {
    if (arguments.length === 0) throw typeError("The \"url\" argument must be specified", "ERR_MISSING_ARGS");
    const input = toUSV(url);
    const r = parseURL(input, baseRecord(base));
    if (r === FAIL) throw invalidURL(input);
    urlRecords.set(this, r);
  }
  static canParse(url, base) {
    try {
      const b = base === undefined ? undefined : parseURL(toUSV(base), undefined);
      if (b === FAIL) return false;
      return parseURL(toUSV(url), b) !== FAIL;
    } catch { return false; }
  }
  static parse(url, base) {
    try { return new URL(url, base); } catch { return null; }
  }
  get href() { return serializeURL(record(this), false); }
  set href(value) {
    const r = parseURL(toUSV(value), undefined);
    if (r === FAIL) throw invalidURL(S(value));
    urlRecords.set(this, r);
    syncParams(this, r);
  }
  get origin() {
    const r = record(this);
    if (r.scheme === "blob") {
      const inner = parseURL(typeof r.path === "string" ? r.path : r.path.join("/"), undefined);
      return inner !== FAIL && (inner.scheme === "http" || inner.scheme === "https")
        ? inner.scheme + "://" + inner.host + (inner.port !== null ? ":" + inner.port : "") : "null";
    }
    if (!isSpecialScheme(r.scheme) || r.scheme === "file") return "null";
    return r.scheme + "://" + r.host + (r.port !== null ? ":" + r.port : "");
  }
  get protocol() { return record(this).scheme + ":"; }
  set protocol(value) { parseURL(toUSV(value) + ":", undefined, record(this), "scheme start"); }
  get username() { return record(this).username; }
  set username(value) {
    const r = record(this);
    if (r.host === null || r.host === "" || r.scheme === "file") return;
    r.username = percentEncode(toUSV(value), USERINFO_SET, false);
  }
  get password() { return record(this).password; }
  set password(value) {
    const r = record(this);
    if (r.host === null || r.host === "" || r.scheme === "file") return;
    r.password = percentEncode(toUSV(value), USERINFO_SET, false);
  }
  get host() {
    const r = record(this);
    if (r.host === null) return "";
    return r.port === null ? r.host : r.host + ":" + r.port;
  }
  set host(value) {
    const r = record(this);
    if (r.opaque) return;
    const copy = { ...r, path: r.path.slice() };
    if (parseURL(toUSV(value), undefined, copy, "host") !== FAIL) urlRecords.set(this, copy);
  }
  get hostname() { const h = record(this).host; return h === null ? "" : h; }
  set hostname(value) {
    const r = record(this);
    if (r.opaque) return;
    const copy = { ...r, path: r.path.slice() };
    if (parseURL(toUSV(value), undefined, copy, "hostname") !== FAIL) urlRecords.set(this, copy);
  }
  get port() { const p = record(this).port; return p === null ? "" : S(p); }
  set port(value) {
    const r = record(this);
    if (r.host === null || r.host === "" || r.scheme === "file") return;
    const v = toUSV(value);
    if (v === "") { r.port = null; return; }
    const copy = { ...r };
    if (parseURL(v, undefined, copy, "port") !== FAIL) r.port = copy.port;
  }
  get pathname() { return serializePath(record(this)); }
  set pathname(value) {
    const r = record(this);
    if (r.opaque) return;
    r.path = [];
    parseURL(toUSV(value), undefined, r, "path start");
  }
  get search() { const q = record(this).query; return q === null || q === "" ? "" : "?" + q; }
  set search(value) {
    const r = record(this);
    let v = toUSV(value);
    if (v === "") { r.query = null; paramsSync(this, []); stripTrailingSpaces(r); return; }
    if (v[0] === "?") v = v.slice(1);
    r.query = "";
    parseURL(v, undefined, r, "query");
    syncParams(this, r);
  }
  get searchParams() {
    let params = searchParamsOf.get(this);
    if (params === undefined) {
      const r = record(this);
      params = new URLSearchParams(r.query ?? "");
      paramsLists.get(params).url = this;
      searchParamsOf.set(this, params);
    }
    return params;
  }
  get hash() { const f = record(this).fragment; return f === null || f === "" ? "" : "#" + f; }
  set hash(value) {
    const r = record(this);
    let v = toUSV(value);
    if (v === "") { r.fragment = null; stripTrailingSpaces(r); return; }
    if (v[0] === "#") v = v.slice(1);
    r.fragment = "";
    parseURL(v, undefined, r, "fragment");
  }
  toString() { return this.href; }
  toJSON() { return this.href; }
  get [Symbol.toStringTag]() { return "URL"; }
  [customInspect](depth, options, inspect) {
    const obj = { href: this.href, origin: this.origin, protocol: this.protocol,
      username: this.username, password: this.password, host: this.host,
      hostname: this.hostname, port: this.port, pathname: this.pathname, search: this.search,
      searchParams: this.searchParams, hash: this.hash };
    return "URL " + inspectValue(obj, options).replace(/^\{/, "{");
  }
}
const paramsSync = (self, list) => {
  const params = searchParamsOf.get(self);
  if (params !== undefined) paramsLists.get(params).list = list;
};
