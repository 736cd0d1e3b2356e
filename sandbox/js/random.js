// random.js: the run's cryptographic random bytes. The host writes a fresh 32-byte key from
// os.urandom into caps[CAP_KEY..CAP_KEY+7] before every run; ChaCha20 (RFC 8439 block
// function, nonce 0, 32-bit block counter) keyed with it produces the stream. Nothing of it
// is set up in the snapshot: the first use in a run reads the key, so no two runs share it.
// That first use also sets caps[CAP_RANDOM] (Result.read_random): a run that drew on the key
// cannot be re-run identically (a receipt's verifier says it may differ). Runs that never ask
// for random bytes pay nothing for the flag.
const chachaState = new Int32Array(16), chachaOut = new Int32Array(16);
const chachaBytes = new U8(chachaOut.buffer);
let chachaReady = false, chachaLeft = 0;
// One block: the state in 16 locals (much faster than array slots in QuickJS), 20 rounds.
const chachaBlock = () => {
  const s = chachaState;
  let x0 = s[0], x1 = s[1], x2 = s[2], x3 = s[3], x4 = s[4], x5 = s[5], x6 = s[6], x7 = s[7];
  let x8 = s[8], x9 = s[9], x10 = s[10], x11 = s[11], x12 = s[12], x13 = s[13], x14 = s[14];
  let x15 = s[15], t;
  for (let i = 0; i < 10; i++) {
    // columns
    x0 = (x0 + x4) | 0; t = x12 ^ x0; x12 = (t << 16) | (t >>> 16);
    x8 = (x8 + x12) | 0; t = x4 ^ x8; x4 = (t << 12) | (t >>> 20);
    x0 = (x0 + x4) | 0; t = x12 ^ x0; x12 = (t << 8) | (t >>> 24);
    x8 = (x8 + x12) | 0; t = x4 ^ x8; x4 = (t << 7) | (t >>> 25);
    x1 = (x1 + x5) | 0; t = x13 ^ x1; x13 = (t << 16) | (t >>> 16);
    x9 = (x9 + x13) | 0; t = x5 ^ x9; x5 = (t << 12) | (t >>> 20);
    x1 = (x1 + x5) | 0; t = x13 ^ x1; x13 = (t << 8) | (t >>> 24);
    x9 = (x9 + x13) | 0; t = x5 ^ x9; x5 = (t << 7) | (t >>> 25);
    x2 = (x2 + x6) | 0; t = x14 ^ x2; x14 = (t << 16) | (t >>> 16);
    x10 = (x10 + x14) | 0; t = x6 ^ x10; x6 = (t << 12) | (t >>> 20);
    x2 = (x2 + x6) | 0; t = x14 ^ x2; x14 = (t << 8) | (t >>> 24);
    x10 = (x10 + x14) | 0; t = x6 ^ x10; x6 = (t << 7) | (t >>> 25);
    x3 = (x3 + x7) | 0; t = x15 ^ x3; x15 = (t << 16) | (t >>> 16);
    x11 = (x11 + x15) | 0; t = x7 ^ x11; x7 = (t << 12) | (t >>> 20);
    x3 = (x3 + x7) | 0; t = x15 ^ x3; x15 = (t << 8) | (t >>> 24);
    x11 = (x11 + x15) | 0; t = x7 ^ x11; x7 = (t << 7) | (t >>> 25);
    // diagonals
    x0 = (x0 + x5) | 0; t = x15 ^ x0; x15 = (t << 16) | (t >>> 16);
    x10 = (x10 + x15) | 0; t = x5 ^ x10; x5 = (t << 12) | (t >>> 20);
    x0 = (x0 + x5) | 0; t = x15 ^ x0; x15 = (t << 8) | (t >>> 24);
    x10 = (x10 + x15) | 0; t = x5 ^ x10; x5 = (t << 7) | (t >>> 25);
    x1 = (x1 + x6) | 0; t = x12 ^ x1; x12 = (t << 16) | (t >>> 16);
    x11 = (x11 + x12) | 0; t = x6 ^ x11; x6 = (t << 12) | (t >>> 20);
    x1 = (x1 + x6) | 0; t = x12 ^ x1; x12 = (t << 8) | (t >>> 24);
    x11 = (x11 + x12) | 0; t = x6 ^ x11; x6 = (t << 7) | (t >>> 25);
    x2 = (x2 + x7) | 0; t = x13 ^ x2; x13 = (t << 16) | (t >>> 16);
    x8 = (x8 + x13) | 0; t = x7 ^ x8; x7 = (t << 12) | (t >>> 20);
    x2 = (x2 + x7) | 0; t = x13 ^ x2; x13 = (t << 8) | (t >>> 24);
    x8 = (x8 + x13) | 0; t = x7 ^ x8; x7 = (t << 7) | (t >>> 25);
    x3 = (x3 + x4) | 0; t = x14 ^ x3; x14 = (t << 16) | (t >>> 16);
    x9 = (x9 + x14) | 0; t = x4 ^ x9; x4 = (t << 12) | (t >>> 20);
    x3 = (x3 + x4) | 0; t = x14 ^ x3; x14 = (t << 8) | (t >>> 24);
    x9 = (x9 + x14) | 0; t = x4 ^ x9; x4 = (t << 7) | (t >>> 25);
  }
  const o = chachaOut;
  o[0] = (x0 + s[0]) | 0; o[1] = (x1 + s[1]) | 0; o[2] = (x2 + s[2]) | 0; o[3] = (x3 + s[3]) | 0;
  o[4] = (x4 + s[4]) | 0; o[5] = (x5 + s[5]) | 0; o[6] = (x6 + s[6]) | 0; o[7] = (x7 + s[7]) | 0;
  o[8] = (x8 + s[8]) | 0; o[9] = (x9 + s[9]) | 0; o[10] = (x10 + s[10]) | 0;
  o[11] = (x11 + s[11]) | 0; o[12] = (x12 + s[12]) | 0; o[13] = (x13 + s[13]) | 0;
  o[14] = (x14 + s[14]) | 0; o[15] = (x15 + s[15]) | 0;
  s[12] = (s[12] + 1) | 0;
  if (s[12] === 0) s[13] = (s[13] + 1) | 0;  // 64-bit counter: never wraps within a run
  chachaLeft = 64;
};
const randomFill = (bytes) => {
  if (!chachaReady) {
    let any = 0;
    chachaState[0] = 0x61707865; chachaState[1] = 0x3320646e;
    chachaState[2] = 0x79622d32; chachaState[3] = 0x6b206574;
    for (let i = 0; i < 8; i++) any |= chachaState[4 + i] = caps[CAP_KEY + i];
    if (any === 0) throw glueError(Error, "no entropy for this run", "ERR_NO_ENTROPY");
    caps[CAP_RANDOM] = 1;
    chachaReady = true;
  }
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    if (chachaLeft === 0) chachaBlock();
    bytes[i] = chachaBytes[64 - chachaLeft--];
  }
  return bytes;
};
const randomUUID = () => {
  const b = randomFill(new U8(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = toHex(b);
  return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) +
    "-" + h.slice(20);
};
