// hash.js: MD5, SHA-1, SHA-224/256, SHA-384/512 and HMAC over Uint8Array (incremental).
// Round constants are derived here (sin for MD5, roots of primes for SHA-2) with BigInt
// when the snapshot is built, not typed in.
const PRIMES = [];
for (let n = 2; PRIMES.length < 80; n++) {
  if (PRIMES.every((p) => n % p !== 0)) PRIMES.push(n);
}
const iroot = (x, k) => {  // floor(x ** (1/k)) for BigInt x, Newton from above
  let r = 1n << BigInt(Math.ceil(x.toString(2).length / k) + 1);
  for (;;) {
    const next = ((BigInt(k) - 1n) * r + x / r ** BigInt(k - 1)) / BigInt(k);
    if (next >= r) return r;
    r = next;
  }
};
const frac64 = (p, k) => iroot(BigInt(p) << BigInt(64 * k), k) & 0xffffffffffffffffn;
const hi32 = (v) => Number(v >> 32n) | 0, lo32 = (v) => Number(v & 0xffffffffn) | 0;
const K512 = new Int32Array(160), K256 = new Int32Array(64);
for (let i = 0; i < 80; i++) {
  const v = frac64(PRIMES[i], 3);
  K512[2 * i] = hi32(v); K512[2 * i + 1] = lo32(v);
  if (i < 64) K256[i] = hi32(v);
}
const IV512 = new Int32Array(16), IV384 = new Int32Array(16);
const IV256 = new Int32Array(8), IV224 = new Int32Array(8);
for (let i = 0; i < 8; i++) {
  const a = frac64(PRIMES[i], 2), b = frac64(PRIMES[i + 8], 2);
  IV512[2 * i] = hi32(a); IV512[2 * i + 1] = lo32(a); IV256[i] = hi32(a);
  IV384[2 * i] = hi32(b); IV384[2 * i + 1] = lo32(b); IV224[i] = lo32(b);
}
const KMD5 = new Int32Array(64);
for (let i = 0; i < 64; i++) KMD5[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0;
const SMD5 = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];

const W16 = new Int32Array(16), W64 = new Int32Array(64), W160 = new Int32Array(160);
const be32 = (b, i) => (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3];
const rotl = (x, n) => (x << n) | (x >>> (32 - n));

const md5Block = (h, b, o) => {
  const w = W16;
  for (let i = 0; i < 16; i++) {
    const j = o + 4 * i;
    w[i] = b[j] | (b[j + 1] << 8) | (b[j + 2] << 16) | (b[j + 3] << 24);
  }
  let a = h[0], bb = h[1], c = h[2], d = h[3];
  for (let i = 0; i < 64; i++) {
    let f, g;
    if (i < 16) { f = (bb & c) | (~bb & d); g = i; }
    else if (i < 32) { f = (d & bb) | (~d & c); g = (5 * i + 1) & 15; }
    else if (i < 48) { f = bb ^ c ^ d; g = (3 * i + 5) & 15; }
    else { f = c ^ (bb | ~d); g = (7 * i) & 15; }
    const t = d;
    d = c; c = bb;
    bb = (bb + rotl((a + f + KMD5[i] + w[g]) | 0, SMD5[(i >> 4) * 4 + (i & 3)])) | 0;
    a = t;
  }
  h[0] = (h[0] + a) | 0; h[1] = (h[1] + bb) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
};

const sha1Block = (h, b, o) => {
  const x = W160;  // 80 words
  for (let i = 0; i < 16; i++) x[i] = be32(b, o + 4 * i);
  for (let i = 16; i < 80; i++) x[i] = rotl(x[i - 3] ^ x[i - 8] ^ x[i - 14] ^ x[i - 16], 1);
  let a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
  for (let i = 0; i < 80; i++) {
    let f, k;
    if (i < 20) { f = (bb & c) | (~bb & d); k = 0x5a827999; }
    else if (i < 40) { f = bb ^ c ^ d; k = 0x6ed9eba1; }
    else if (i < 60) { f = (bb & c) | (bb & d) | (c & d); k = 0x8f1bbcdc; }
    else { f = bb ^ c ^ d; k = 0xca62c1d6; }
    const t = (rotl(a, 5) + f + e + k + x[i]) | 0;
    e = d; d = c; c = rotl(bb, 30); bb = a; a = t;
  }
  h[0] = (h[0] + a) | 0; h[1] = (h[1] + bb) | 0; h[2] = (h[2] + c) | 0;
  h[3] = (h[3] + d) | 0; h[4] = (h[4] + e) | 0;
};

const sha256Block = (h, b, o) => {
  const w = W64;
  for (let i = 0; i < 16; i++) w[i] = be32(b, o + 4 * i);
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15], y = w[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K256[i] + w[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
    hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = bb; bb = a; a = (t1 + t2) | 0;
  }
  h[0] = (h[0] + a) | 0; h[1] = (h[1] + bb) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
};

// SHA-512: 64-bit words as (hi, lo) pairs of int32
const sha512Block = (h, b, o) => {
  const w = W160;
  for (let i = 0; i < 32; i++) w[i] = be32(b, o + 4 * i);
  for (let i = 16; i < 80; i++) {
    const xh = w[2 * (i - 15)], xl = w[2 * (i - 15) + 1];
    const s0h = ((xh >>> 1) | (xl << 31)) ^ ((xh >>> 8) | (xl << 24)) ^ (xh >>> 7);
    const s0l = ((xl >>> 1) | (xh << 31)) ^ ((xl >>> 8) | (xh << 24)) ^ ((xl >>> 7) | (xh << 25));
    const yh = w[2 * (i - 2)], yl = w[2 * (i - 2) + 1];
    const s1h = ((yh >>> 19) | (yl << 13)) ^ ((yl >>> 29) | (yh << 3)) ^ (yh >>> 6);
    const s1l = ((yl >>> 19) | (yh << 13)) ^ ((yh >>> 29) | (yl << 3)) ^ ((yl >>> 6) | (yh << 26));
    let lo = (s0l >>> 0) + (s1l >>> 0) + (w[2 * (i - 7) + 1] >>> 0) + (w[2 * (i - 16) + 1] >>> 0);
    const hi = s0h + s1h + w[2 * (i - 7)] + w[2 * (i - 16)] + ((lo / 4294967296) | 0);
    w[2 * i] = hi | 0; w[2 * i + 1] = lo | 0;
  }
  let ah = h[0], al = h[1], bh = h[2], bl = h[3], ch = h[4], cl = h[5], dh = h[6], dl = h[7];
  let eh = h[8], el = h[9], fh = h[10], fl = h[11], gh = h[12], gl = h[13], hh = h[14], hl = h[15];
  for (let i = 0; i < 80; i++) {
    const S1h = ((eh >>> 14) | (el << 18)) ^ ((eh >>> 18) | (el << 14)) ^ ((el >>> 9) | (eh << 23));
    const S1l = ((el >>> 14) | (eh << 18)) ^ ((el >>> 18) | (eh << 14)) ^ ((eh >>> 9) | (el << 23));
    const chh = (eh & fh) ^ (~eh & gh), chl = (el & fl) ^ (~el & gl);
    let lo = (hl >>> 0) + (S1l >>> 0) + (chl >>> 0) + (K512[2 * i + 1] >>> 0) + (w[2 * i + 1] >>> 0);
    const t1h = (hh + S1h + chh + K512[2 * i] + w[2 * i] + ((lo / 4294967296) | 0)) | 0;
    const t1l = lo | 0;
    const S0h = ((ah >>> 28) | (al << 4)) ^ ((al >>> 2) | (ah << 30)) ^ ((al >>> 7) | (ah << 25));
    const S0l = ((al >>> 28) | (ah << 4)) ^ ((ah >>> 2) | (al << 30)) ^ ((ah >>> 7) | (al << 25));
    const mh = (ah & bh) ^ (ah & ch) ^ (bh & ch), ml = (al & bl) ^ (al & cl) ^ (bl & cl);
    lo = (S0l >>> 0) + (ml >>> 0);
    const t2h = (S0h + mh + ((lo / 4294967296) | 0)) | 0, t2l = lo | 0;
    hh = gh; hl = gl; gh = fh; gl = fl; fh = eh; fl = el;
    lo = (dl >>> 0) + (t1l >>> 0);
    eh = (dh + t1h + ((lo / 4294967296) | 0)) | 0; el = lo | 0;
    dh = ch; dl = cl; ch = bh; cl = bl; bh = ah; bl = al;
    lo = (t1l >>> 0) + (t2l >>> 0);
    ah = (t1h + t2h + ((lo / 4294967296) | 0)) | 0; al = lo | 0;
  }
  const v = [ah, al, bh, bl, ch, cl, dh, dl, eh, el, fh, fl, gh, gl, hh, hl];
  for (let i = 0; i < 16; i += 2) {
    const lo = (h[i + 1] >>> 0) + (v[i + 1] >>> 0);
    h[i] = (h[i] + v[i] + ((lo / 4294967296) | 0)) | 0;
    h[i + 1] = lo | 0;
  }
};

// name -> [block bytes, length-field bytes, big-endian, IV, compress, digest bytes]
const HASHES = {
  __proto__: null,
  md5: [64, 8, false, new Int32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]), md5Block, 16],
  sha1: [64, 8, true,
    new Int32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0]), sha1Block, 20],
  sha224: [64, 8, true, IV224, sha256Block, 28],
  sha256: [64, 8, true, IV256, sha256Block, 32],
  sha384: [128, 16, true, IV384, sha512Block, 48],
  sha512: [128, 16, true, IV512, sha512Block, 64],
};
const HASH_ALIASES = { __proto__: null, "sha-1": "sha1", "sha-224": "sha224", "sha-256": "sha256",
  "sha-384": "sha384", "sha-512": "sha512", "rsa-md5": "md5", "rsa-sha1": "sha1",
  "rsa-sha256": "sha256", "rsa-sha512": "sha512" };
const hashSpec = (name) => {
  let n = S(name).toLowerCase();
  n = HASH_ALIASES[n] ?? n;
  return HASHES[n];
};

class Digest {  // internal incremental state; never handed to user code
  constructor(spec) {
    this.spec = spec;
    this.h = spec[3].slice();
    this.buf = new U8(spec[0]);
    this.fill = 0;
    this.total = 0;
  }
  copy() {
    const d = new Digest(this.spec);
    d.h.set(this.h); d.buf.set(this.buf); d.fill = this.fill; d.total = this.total;
    return d;
  }
  update(data) {
    const [block, , , , compress] = this.spec;
    const n = data.length, buf = this.buf, h = this.h;
    let i = 0;
    this.total += n;
    while (i < n) {
      if (this.fill === 0 && n - i >= block) { compress(h, data, i); i += block; continue; }
      const take = Math.min(block - this.fill, n - i);
      buf.set(data.subarray(i, i + take), this.fill);
      this.fill += take; i += take;
      if (this.fill === block) { compress(h, buf, 0); this.fill = 0; }
    }
  }
  digest() {
    const [block, lenBytes, big, , compress, outLen] = this.spec;
    const buf = this.buf, h = this.h;
    let fill = this.fill;
    buf[fill++] = 0x80;
    if (fill > block - lenBytes) { buf.fill(0, fill); compress(h, buf, 0); fill = 0; }
    buf.fill(0, fill);
    const lo = (this.total % 0x20000000) * 8, hi = Math.floor(this.total / 0x20000000);
    for (let i = 0; i < 4; i++) {
      const lb = (lo >>> (8 * i)) & 255, hb = (hi >>> (8 * i)) & 255;
      if (big) { buf[block - 1 - i] = lb; buf[block - 5 - i] = hb; }
      else { buf[block - 8 + i] = lb; buf[block - 4 + i] = hb; }
    }
    compress(h, buf, 0);
    const out = new U8(outLen);
    for (let i = 0; i < outLen; i++) {
      const word = h[i >> 2], shift = big ? 24 - 8 * (i & 3) : 8 * (i & 3);
      out[i] = (word >>> shift) & 255;
    }
    return out;
  }
}
const digestOf = (spec, bytes) => { const d = new Digest(spec); d.update(bytes); return d.digest(); };

class HmacState {  // internal
  constructor(spec, key) {
    const block = spec[0];
    if (key.length > block) key = digestOf(spec, key);
    const pad = new U8(block);
    pad.set(key);
    this.inner = new Digest(spec);
    this.outer = new Digest(spec);
    const ipad = pad.map((b) => b ^ 0x36), opad = pad.map((b) => b ^ 0x5c);
    this.inner.update(ipad);
    this.outer.update(opad);
  }
  update(data) { this.inner.update(data); }
  digest() { this.outer.update(this.inner.digest()); return this.outer.digest(); }
}
