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

// --- fireAsync (issue 12: the async event form that replaced the ad-hoc waitFor convention) ---

const tick = (ms = 2) => new Promise((r) => setTimeout(r, ms));

test("fireAsync awaits each handler before the next runs, in priority order", async () => {
  const bus = new EventBus();
  const seen: string[] = [];
  bus.hook("e", async () => {
    await tick(10);
    seen.push("high done");
  }, 5);
  bus.hook("e", () => void seen.push("low starts"));
  assert.is(await bus.fireAsync("e", {}), undefined);
  assert.equal(seen, ["high done", "low starts"]);
});

test("fireAsync: a handler can veto after an awaited lookup; later handlers and the firer see it", async () => {
  const bus = new EventBus();
  const banned = new Set(["mallory"]);
  const lookup = async (name: string) => (await tick(), banned.has(name));
  const event = { username: "mallory", allowed: true, reason: undefined as string | undefined };
  let seenByLater: boolean | undefined;
  bus.hook("user-registering", async (e: typeof event) => {
    if (await lookup(e.username)) {
      e.allowed = false;
      e.reason = "banned";
    }
  }, 10);
  bus.hook("user-registering", (e: typeof event) => void (seenByLater = e.allowed));
  await bus.fireAsync("user-registering", event);
  assert.is(event.allowed, false);
  assert.is(event.reason, "banned");
  assert.is(seenByLater, false);
  // The synchronous form cannot wait: the same handler's veto arrives too late.
  const again = { username: "mallory", allowed: true, reason: undefined };
  bus.fire("user-registering", again);
  assert.is(again.allowed, true);
});

test("fireAsync: the first resolved result other than undefined stops the chain and is returned", async () => {
  const bus = new EventBus();
  let lateRan = false;
  bus.hook("e", async () => (await tick(), null), 1);
  bus.hook("e", () => {
    lateRan = true;
  });
  assert.is(await bus.fireAsync("e"), null);
  assert.is(lateRan, false);
  assert.is(await new EventBus().fireAsync("nothing"), undefined);
});

test("fireAsync: a rejection or a throw stops the chain and rejects, so the firing module sees it", async () => {
  for (const failing of [async () => { await tick(); throw new Error("undone"); }, () => { throw new Error("undone"); }]) {
    const bus = new EventBus();
    let lateRan = false;
    bus.hook("e", failing, 1);
    bus.hook("e", () => void (lateRan = true));
    const err = await bus.fireAsync("e").then(() => undefined, (e: unknown) => e);
    assert.instance(err, Error);
    assert.is((err as Error).message, "undone");
    assert.is(lateRan, false);
  }
});

test("fireAsync dispatches to the handlers hooked when it started", async () => {
  const bus = new EventBus();
  const seen: string[] = [];
  const late = () => void seen.push("late");
  bus.hook("e", async () => {
    bus.hook("e", late, -1);
    await tick();
    seen.push("first");
  });
  await bus.fireAsync("e");
  assert.equal(seen, ["first"]);
  await bus.fireAsync("e");
  assert.equal(seen, ["first", "first", "late"]);
});

test.run();
