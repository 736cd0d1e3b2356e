// expect: TimeoutError
// The Function constructor reached through a prototype still runs inside the sandbox.
const F = (() => {}).constructor;
F("while (true) {}")();
