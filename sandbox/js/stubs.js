// stubs.js: the plain snapshot's stand-ins for what only the full snapshot has (modules,
// Worker globals): touching one marks the run (caps[CAP_NEED_LIB]) and throws; the host then
// runs the code again, from the start, in the full snapshot (see sandbox/modules.py).
const needLib = () => {
  caps[CAP_NEED_LIB] = 1;
  throw glueError(Error, "codexec: this code needs the full snapshot (it is run again there)");
};
const stub = { get: needLib, set: needLib, enumerable: false, configurable: true };
// require stays a function (the import() wrappers capture it when the snapshot is built)
defineGlobal("require", nameFunction(function (id) { needLib(); }, "require", 1));
for (const name of ["URL", "URLSearchParams", "TextEncoder", "TextDecoder",
  "structuredClone", "crypto", "fetch", "setTimeout", "setInterval", "clearTimeout",
  "clearInterval"]) {
  defineProperty(globalThis, name, stub);
}
defineProperty(console, "table", { ...stub, enumerable: true });
defineProperty(console, "dir", { ...stub, enumerable: true });
