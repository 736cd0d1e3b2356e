// expect: ok
// Walk every reachable constructor looking for anything host-like.
const seen = new Set();
const found = [];
const walk = (o, depth) => {
  if (o === null || (typeof o !== "object" && typeof o !== "function") || seen.has(o) || depth > 3) return;
  seen.add(o);
  for (const k of Reflect.ownKeys(o)) {
    if (/^(std|os|process|getenv|system|popen|spawn|loadFile|writeFile)$/.test(String(k))) found.push(String(k));
    let v;
    try { v = o[k]; } catch { continue; }
    walk(v, depth + 1);
  }
};
walk(globalThis, 0);
if (found.length) throw new Error("host objects reachable: " + found.join(","));
return true;
