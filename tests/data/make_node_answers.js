// Records Node's answers for tests/data/cases.json into tests/data/node_answers.json.
// Made with:   node tests/data/make_node_answers.js   (from the repository root; Node v20)
// Each case is a JS expression evaluated with `path`, `util` and `crypto` in scope; the answer
// is normalized by `normalize` below, which the sandbox test applies to its own answers too.
"use strict";
const fs = require("fs");
const { Console } = require("console");
const { Writable } = require("stream");
process.chdir("/");  // path.resolve: the sandbox's working directory is "/"
const root = __dirname;
const cases = JSON.parse(fs.readFileSync(root + "/cases.json", "utf8"));
const path = require("path"), util = require("util"), crypto = require("crypto");
void path; void util; void crypto;

const normalize = (v) => {
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex") };
  if (v instanceof Error || (v && typeof v === "object" && v.constructor && v.constructor.name === "DOMException")) {
    return { error: v.name, code: v.code === undefined ? null : v.code };
  }
  if (v === undefined) return { undefined: true };
  return JSON.parse(JSON.stringify(v));
};
const answers = { node: process.version, cases: {} };
for (const group of ["path", "util", "crypto", "globals"]) {
  for (const expr of cases[group]) {
    let out;
    try { out = normalize(eval(expr)); } catch (e) { out = normalize(e); }
    answers.cases[expr] = out;
  }
}
const capture = (method, args) => {
  let text = "";
  const stream = new Writable({ write(chunk, enc, cb) { text += chunk; cb(); } });
  new Console({ stdout: stream, stderr: stream, colorMode: false })[method](...args);
  return text.replace(/\n$/, "");
};
answers.table = cases.table.map((args) => capture("table", args));
answers.dir = cases.dir.map((args) => capture("dir", args));
fs.writeFileSync(root + "/node_answers.json", JSON.stringify(answers, null, 1) + "\n");
console.log(`recorded ${Object.keys(answers.cases).length} answers with Node ${process.version}`);
