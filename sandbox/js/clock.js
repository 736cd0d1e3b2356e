// clock.js: the clock flag (caps[CAP_CLOCK], Result.read_clock), set by every way of
// reading the time: Date.now(), Date() and new Date() without arguments, performance.now().
// In both snapshots (see sandbox/modules.py).
const defineGlobal = (name, value) => defineProperty(globalThis, name, open(value, false));
const nameFunction = (fn, name, length) => {
  defineProperty(fn, "name", { value: name, configurable: true });
  defineProperty(fn, "length", { value: length, configurable: true });
  return fn;
};
const RealDate = Date, realDateNow = Date.now, perf = performance, perfNow = performance.now;
const now = () => apply(perfNow, perf, []);
defineProperty(RealDate, "now", open(nameFunction(function () {
  caps[CAP_CLOCK] = 1;
  return apply(realDateNow, RealDate, []);
}, "now", 0), false));
// QuickJS's performance.now is not configurable: a `performance` of our own replaces it
defineGlobal("performance", {
  now: nameFunction(function () {
    caps[CAP_CLOCK] = 1;
    return apply(perfNow, perf, []);
  }, "now", 0),
  timeOrigin: perf.timeOrigin,
  toJSON() { return { timeOrigin: this.timeOrigin }; },
});
const DateProxy = new Proxy(RealDate, {
  construct(target, args, newTarget) {
    if (args.length === 0) caps[CAP_CLOCK] = 1;
    return Reflect.construct(target, args, newTarget);
  },
  apply(target, self, args) {
    caps[CAP_CLOCK] = 1;
    return apply(target, self, args);
  },
});
defineProperty(RealDate.prototype, "constructor", open(DateProxy, false));
defineGlobal("Date", DateProxy);

