/** The statistics bus (src/core/stats.ts): a no-op without listeners, gauges read at collection. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Stats } from "../../src/core/stats.js";

test("observations reach every listener until it unlistens; a throwing listener is isolated", () => {
  const stats = new Stats();
  assert.is(stats.active, false);
  stats.observe("x", 1); // nobody listens: nothing happens, nothing throws
  const seen: Array<[string, number, Record<string, string>]> = [];
  stats.listen(() => {
    throw new Error("a broken exporter");
  });
  const off = stats.listen((n, v, l) => void seen.push([n, v, { ...l }]));
  assert.is(stats.active, true);
  stats.observe("http_request", 0.5, { status: "200" });
  off();
  stats.observe("http_request", 0.7);
  assert.equal(seen, [["http_request", 0.5, { status: "200" }]]);
  assert.throws(() => stats.listen(undefined as never), /expected a function/);
});

test("gauges: the newest registration of a name + labels is read; removing one keeps the others", () => {
  const stats = new Stats();
  const a = stats.gauge("journal", { database: "d" }, () => 1);
  const b = stats.gauge("journal", { database: "d" }, () => 2);
  stats.gauge("other", {}, () => Number.NaN); // not a finite number: left out
  stats.gauge("failing", {}, () => {
    throw new Error("gone");
  });
  assert.equal(stats.readGauges(), [{ name: "journal", labels: { database: "d" }, value: 2 }]);
  b();
  assert.equal(stats.readGauges(), [{ name: "journal", labels: { database: "d" }, value: 1 }]);
  a();
  assert.equal(stats.readGauges(), []);
  assert.throws(() => stats.gauge("", {}, () => 1), /non-empty/);
});

test.run();
