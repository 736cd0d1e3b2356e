// expect: ok
// Closing the wrapper function early only runs code in the same sandbox.
return 1 }); globalThis.leak = 1; (async function () {
