// uvu/assert with every assertion counted in globalThis.__assertions (read by counted-uvu.mjs).
import * as real from "uvu/assert";

globalThis.__assertions ??= 0;
const counted = (fn) => (...args) => {
  globalThis.__assertions++;
  return fn(...args);
};

export const Assertion = real.Assertion;
export const ok = counted(real.ok);
export const is = Object.assign(counted(real.is), { not: counted(real.is.not) });
export const equal = counted(real.equal);
export const unreachable = counted(real.unreachable);
export const type = counted(real.type);
export const instance = counted(real.instance);
export const match = counted(real.match);
export const snapshot = counted(real.snapshot);
export const fixture = counted(real.fixture);
export const throws = counted(real.throws);
export const not = Object.assign(counted(real.not), Object.fromEntries(Object.entries(real.not).map(([k, f]) => [k, counted(f)])));
