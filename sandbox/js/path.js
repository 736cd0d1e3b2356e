// path.js: Node's `path` module, POSIX flavour (`path.posix`; `path.win32` is not provided).
// The working directory is "/" (the sandbox has no file system).
const checkPath = (p, name) => {
  if (typeof p !== "string") {
    throw typeError("The \"" + (name ?? "path") + "\" argument must be of type string. Received " +
      describeArg(p), "ERR_INVALID_ARG_TYPE");
  }
};
const describeArg = (v) => {
  if (v === null || v === undefined) return S(v);
  if (typeof v === "function") return "function " + (v.name || "(anonymous)");
  if (typeof v === "object") return "an instance of " + (v.constructor?.name ?? "Object");
  return "type " + typeof v + " (" + inspectValue(v, { depth: 0 }) + ")";
};
const normalizeString = (path, allowAboveRoot) => {
  let res = "", lastSegmentLength = 0, lastSlash = -1, dots = 0, code = 0;
  for (let i = 0; i <= path.length; ++i) {
    if (i < path.length) code = path.charCodeAt(i);
    else if (code === 47) break;
    else code = 47;
    if (code === 47) {
      if (lastSlash === i - 1 || dots === 1) {
        // NOOP
      } else if (dots === 2) {
        if (res.length < 2 || lastSegmentLength !== 2 ||
            res.charCodeAt(res.length - 1) !== 46 || res.charCodeAt(res.length - 2) !== 46) {
          if (res.length > 2) {
            const lastSlashIndex = res.lastIndexOf("/");
            if (lastSlashIndex === -1) { res = ""; lastSegmentLength = 0; }
            else {
              res = res.slice(0, lastSlashIndex);
              lastSegmentLength = res.length - 1 - res.lastIndexOf("/");
            }
            lastSlash = i; dots = 0;
            continue;
          } else if (res.length !== 0) {
            res = ""; lastSegmentLength = 0; lastSlash = i; dots = 0;
            continue;
          }
        }
        if (allowAboveRoot) { res += res.length > 0 ? "/.." : ".."; lastSegmentLength = 2; }
      } else {
        if (res.length > 0) res += "/" + path.slice(lastSlash + 1, i);
        else res = path.slice(lastSlash + 1, i);
        lastSegmentLength = i - lastSlash - 1;
      }
      lastSlash = i; dots = 0;
    } else if (code === 46 && dots !== -1) {
      ++dots;
    } else {
      dots = -1;
    }
  }
  return res;
};
const posix = {
  sep: "/",
  delimiter: ":",
  resolve(...args) {
    let resolvedPath = "", resolvedAbsolute = false;
    for (let i = args.length - 1; i >= -1 && !resolvedAbsolute; i--) {
      const path = i >= 0 ? args[i] : "/";
      checkPath(path, "paths[" + i + "]");
      if (path.length === 0) continue;
      resolvedPath = path + "/" + resolvedPath;
      resolvedAbsolute = path.charCodeAt(0) === 47;
    }
    resolvedPath = normalizeString(resolvedPath, !resolvedAbsolute);
    if (resolvedAbsolute) return "/" + resolvedPath;
    return resolvedPath.length > 0 ? resolvedPath : ".";
  },
  normalize(path) {
    checkPath(path);
    if (path.length === 0) return ".";
    const isAbsolute = path.charCodeAt(0) === 47;
    const trailing = path.charCodeAt(path.length - 1) === 47;
    path = normalizeString(path, !isAbsolute);
    if (path.length === 0) {
      if (isAbsolute) return "/";
      return trailing ? "./" : ".";
    }
    if (trailing) path += "/";
    return isAbsolute ? "/" + path : path;
  },
  isAbsolute(path) {
    checkPath(path);
    return path.length > 0 && path.charCodeAt(0) === 47;
  },
  join(...args) {
    if (args.length === 0) return ".";
    let joined;
    for (let i = 0; i < args.length; ++i) {
      const arg = args[i];
      checkPath(arg);
      if (arg.length > 0) joined = joined === undefined ? arg : joined + "/" + arg;
    }
    if (joined === undefined) return ".";
    return posix.normalize(joined);
  },
  relative(from, to) {
    checkPath(from, "from");
    checkPath(to, "to");
    if (from === to) return "";
    from = posix.resolve(from);
    to = posix.resolve(to);
    if (from === to) return "";
    const fromStart = 1, fromEnd = from.length, fromLen = fromEnd - fromStart;
    const toStart = 1, toLen = to.length - toStart;
    const length = fromLen < toLen ? fromLen : toLen;
    let lastCommonSep = -1, i = 0;
    for (; i < length; i++) {
      const fromCode = from.charCodeAt(fromStart + i);
      if (fromCode !== to.charCodeAt(toStart + i)) break;
      else if (fromCode === 47) lastCommonSep = i;
    }
    if (i === length) {
      if (toLen > length) {
        if (to.charCodeAt(toStart + i) === 47) return to.slice(toStart + i + 1);
        if (i === 0) return to.slice(toStart + i);
      } else if (fromLen > length) {
        if (from.charCodeAt(fromStart + i) === 47) lastCommonSep = i;
        else if (i === 0) lastCommonSep = 0;
      }
    }
    let out = "";
    for (i = fromStart + lastCommonSep + 1; i <= fromEnd; ++i) {
      if (i === fromEnd || from.charCodeAt(i) === 47) out += out.length === 0 ? ".." : "/..";
    }
    return out + to.slice(toStart + lastCommonSep);
  },
  toNamespacedPath(path) { return path; },
  dirname(path) {
    checkPath(path);
    if (path.length === 0) return ".";
    const hasRoot = path.charCodeAt(0) === 47;
    let end = -1, matchedSlash = true;
    for (let i = path.length - 1; i >= 1; --i) {
      if (path.charCodeAt(i) === 47) {
        if (!matchedSlash) { end = i; break; }
      } else {
        matchedSlash = false;
      }
    }
    if (end === -1) return hasRoot ? "/" : ".";
    if (hasRoot && end === 1) return "//";
    return path.slice(0, end);
  },
  basename(path, suffix) {
    if (suffix !== undefined) checkPath(suffix, "suffix");
    checkPath(path);
    let start = 0, end = -1, matchedSlash = true;
    if (suffix !== undefined && suffix.length > 0 && suffix.length <= path.length) {
      if (suffix === path) return "";
      let extIdx = suffix.length - 1, firstNonSlashEnd = -1;
      for (let i = path.length - 1; i >= 0; --i) {
        const code = path.charCodeAt(i);
        if (code === 47) {
          if (!matchedSlash) { start = i + 1; break; }
        } else {
          if (firstNonSlashEnd === -1) { matchedSlash = false; firstNonSlashEnd = i + 1; }
          if (extIdx >= 0) {
            if (code === suffix.charCodeAt(extIdx)) {
              if (--extIdx === -1) end = i;
            } else {
              extIdx = -1; end = firstNonSlashEnd;
            }
          }
        }
      }
      if (start === end) end = firstNonSlashEnd;
      else if (end === -1) end = path.length;
      return path.slice(start, end);
    }
    for (let i = path.length - 1; i >= 0; --i) {
      if (path.charCodeAt(i) === 47) {
        if (!matchedSlash) { start = i + 1; break; }
      } else if (end === -1) {
        matchedSlash = false; end = i + 1;
      }
    }
    if (end === -1) return "";
    return path.slice(start, end);
  },
  extname(path) {
    checkPath(path);
    const [startDot, startPart, end, preDotState] = lastPart(path, 0);
    if (end === -1 || noExtension(startDot, startPart, end, preDotState)) return "";
    return path.slice(startDot, end);
  },
  format(pathObject) {
    if (pathObject === null || typeof pathObject !== "object") {
      throw typeError("The \"pathObject\" argument must be of type object. Received " +
        describeArg(pathObject), "ERR_INVALID_ARG_TYPE");
    }
    const dir = pathObject.dir || pathObject.root;
    const base = pathObject.base ||
      ((pathObject.name || "") + formatExt(pathObject.ext));
    if (!dir) return base;
    return dir === pathObject.root ? dir + base : dir + "/" + base;
  },
  parse(path) {
    checkPath(path);
    const ret = { root: "", dir: "", base: "", ext: "", name: "" };
    if (path.length === 0) return ret;
    const isAbsolute = path.charCodeAt(0) === 47;
    let start;
    if (isAbsolute) { ret.root = "/"; start = 1; } else { start = 0; }
    const [startDot, startPart, end, preDotState] = lastPart(path, start);
    if (end !== -1) {
      const start2 = startPart === 0 && isAbsolute ? 1 : startPart;
      if (noExtension(startDot, startPart, end, preDotState)) {
        ret.base = ret.name = path.slice(start2, end);
      } else {
        ret.name = path.slice(start2, startDot);
        ret.base = path.slice(start2, end);
        ret.ext = path.slice(startDot, end);
      }
    }
    if (startPart > 0) ret.dir = path.slice(0, startPart - 1);
    else if (isAbsolute) ret.dir = "/";
    return ret;
  },
  matchesGlob: undefined,
};
const formatExt = (ext) => (ext ? (ext[0] === "." ? "" : ".") + ext : "");
// The last part of a path, scanned from its end down to index `stop` (Node's algorithm):
// [index of its last ".", its start, its end (-1: none), preDotState].
function lastPart(path, stop) {
  let startDot = -1, startPart = 0, end = -1, matchedSlash = true, preDotState = 0;
  for (let i = path.length - 1; i >= stop; --i) {
    const code = path.charCodeAt(i);
    if (code === 47) {
      if (!matchedSlash) { startPart = i + 1; break; }
      continue;
    }
    if (end === -1) { matchedSlash = false; end = i + 1; }
    if (code === 46) {
      if (startDot === -1) startDot = i;
      else if (preDotState !== 1) preDotState = 1;
    } else if (startDot !== -1) {
      preDotState = -1;
    }
  }
  return [startDot, startPart, end, preDotState];
}
// Whether that part has no extension ("", ".", "..", ".hidden", "name").
const noExtension = (startDot, startPart, end, preDotState) =>
  startDot === -1 || preDotState === 0 ||
  (preDotState === 1 && startDot === end - 1 && startDot === startPart + 1);
delete posix.matchesGlob;
posix.posix = posix;
const pathModule = posix;
