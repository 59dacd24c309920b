import { test } from "uvu";
import * as assert from "uvu/assert";
import { EventBus } from "../../src/core/events.js";

test("handlers run highest priority first, default 0, ties in insertion order", () => {
  const bus = new EventBus();
  const seen: string[] = [];
  bus.hook("e", () => void seen.push("zero-a"));
  bus.hook("e", () => void seen.push("ten"), 10);
  bus.hook("e", () => void seen.push("minus"), -5);
  bus.hook("e", () => void seen.push("zero-b"));
  assert.is(bus.fire("e", {}), undefined);
  assert.equal(seen, ["ten", "zero-a", "zero-b", "minus"]);
});

test("first non-undefined return stops the chain and is returned, including false and null", () => {
  for (const value of [false, null, 0, "", "x"]) {
    const bus = new EventBus();
    let lateRan = false;
    bus.hook("e", () => value, 1);
    bus.hook("e", () => {
      lateRan = true;
      return "late";
    });
    assert.is(bus.fire("e"), value);
    assert.is(lateRan, false, `handler after ${String(value)} must not run`);
  }
});

test("no handlers: fire returns undefined", () => {
  assert.is(new EventBus().fire("nothing", { a: 1 }), undefined);
});

test("handlers receive the data object and may mutate it", () => {
  const bus = new EventBus();
  bus.hook("e", (d: { n: number }) => void (d.n += 1), 2);
  bus.hook("e", (d: { n: number }) => void (d.n *= 10), 1);
  const data = { n: 1 };
  bus.fire("e", data);
  assert.is(data.n, 20);
});

test("the same function added twice is kept once, latest priority wins", () => {
  const bus = new EventBus();
  const seen: string[] = [];
  const f = () => void seen.push("f");
  bus.hook("e", f, 5);
  bus.hook("e", () => void seen.push("g"), 1);
  bus.hook("e", f, 0);
  bus.fire("e");
  assert.equal(seen, ["g", "f"]);
  assert.is(bus.count("e"), 2);
});

test("hook returns an unhook function; unhook removes", () => {
  const bus = new EventBus();
  let n = 0;
  const off = bus.hook("e", () => void n++);
  const g = () => void n++;
  bus.hook("e", g);
  bus.fire("e");
  off();
  bus.unhook("e", g);
  bus.fire("e");
  assert.is(n, 2);
  assert.is(bus.has("e"), false);
});

test("misuse throws early with a clear message", () => {
  const bus = new EventBus();
  assert.throws(() => bus.hook("e", "nope" as any), /handler must be a function/);
  assert.throws(() => bus.hook("e", () => 1, NaN), /priority must be a number/);
});

test("a hook added while firing applies from the next fire", () => {
  const bus = new EventBus();
  const seen: string[] = [];
  bus.hook("e", () => {
    seen.push("a");
    bus.hook("e", () => void seen.push("b"), -1);
  });
  bus.fire("e");
  assert.equal(seen, ["a"]);
});

test.run();
