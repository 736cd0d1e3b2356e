// install.js: the module table, `require`, and the globals this glue adds.
// MODULES: name -> [bit of caps[CAP_MODULES] that allows it, exports]; the host sets the bits
// per run from Limits.modules. Names that exist in Node but not here are not in the table.
const MODULES = { __proto__: null, path: [1, pathModule], util: [2, utilModule], crypto: [4, cryptoModule] };
const require = function require(id) {
  if (typeof id !== "string") {
    throw typeError("The \"id\" argument must be of type string", "ERR_INVALID_ARG_TYPE");
  }
  const name = id.length > 5 && id.slice(0, 5) === "node:" ? id.slice(5) : id;
  const entry = MODULES[name];
  if (entry === undefined) {
    throw glueError(Error, "Cannot find module '" + id + "': codexec provides path, util and crypto",
      "MODULE_NOT_FOUND");
  }
  if ((caps[CAP_MODULES] & entry[0]) === 0) {
    throw glueError(Error, "module '" + name + "' is not allowed for this execution: add it to " +
      "allowedModules", "ERR_MODULE_NOT_ALLOWED");
  }
  return entry[1];
};
guardAll(pathModule);
guardAll(utilModule);
guardAll(utilModule.types);
guardAll(cryptoModule);
guardAll(subtle);
guardAll(webcrypto);
guardMethods(Hash);
guardMethods(Hmac);
guardMethods(TextEncoder);
guardMethods(TextDecoder);
guardMethods(URLSearchParams);
for (const cls of [Hash, Hmac, TextEncoder, TextDecoder, URL, URLSearchParams, NetworkDisabledError]) {
  glueClasses.add(cls);
}

defineGlobal("require", require);
defineGlobal("URL", URL);
defineGlobal("URLSearchParams", URLSearchParams);
defineGlobal("TextEncoder", TextEncoder);
defineGlobal("TextDecoder", TextDecoder);
defineGlobal("structuredClone", guard(structuredClone));
defineGlobal("crypto", webcrypto);
defineGlobal("fetch", fetch);
defineGlobal("setTimeout", guard(setTimeout));
defineGlobal("setInterval", guard(setInterval));
defineGlobal("clearTimeout", clearTimeout);
defineGlobal("clearInterval", clearInterval);
defineProperty(console, "table", open(guard(consoleTable), true));
defineProperty(console, "dir", open(guard(consoleDir), true));
