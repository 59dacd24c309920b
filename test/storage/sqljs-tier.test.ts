/**
 * Issue 15 item 4: a short-lived process (a database opened in place, prosodyctl) has V8 compile
 * sql.js's WebAssembly with its baseline compiler only, so no optimizing recompilation of SQLite's
 * hot code runs on background threads for node to wait for (sqljs.ts, loadSqlJs). The server keeps
 * V8's default. Observed in a child process through V8's test natives: a hot sql.js function is
 * recompiled (no longer Liftoff code) by default, and stays Liftoff code after a baseline load,
 * also when that load comes from opening a database in place.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { skip } from "../helpers/skip.js";

const src = pathToFileURL(path.resolve("src/storage/sqlite")).href;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-sqljs-tier-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

/**
 * In a fresh process: sql.js loaded by `how`, then one of its exported functions called hot for
 * about a second. Whether it is still Liftoff (baseline) code at the end: "liftoff" / "optimized".
 */
function tierAfterHotCalls(how: "optimizing" | "baseline" | "in-place" | "memory"): string {
  const load =
    how === "optimizing" || how === "baseline"
      ? `const { SQL } = await loadSqlJs({ tier: "${how}" });`
      : `const db = await DurableSqlite.open(${JSON.stringify(path.join(root, `${how}.sqlite`))}, { workingCopy: "${how}" });
         await db.execute([["CREATE TABLE IF NOT EXISTS t (k)"]]);
         const { SQL } = await loadSqlJs();`;
  const script = `
    const { loadSqlJs } = await import("${src}/sqljs.ts");
    const { DurableSqlite } = await import("${src}/durable-db.ts");
    ${load}
    const f = SQL._free; // a raw export of the module
    const isLiftoff = new Function("f", "return %IsLiftoffFunction(f);");
    f(0); // compiled on its first call
    let liftoff = isLiftoff(f);
    for (let round = 0; liftoff && round < 40; round++) {
      for (let i = 0; i < 1e5; i++) f(0);
      await new Promise((r) => setTimeout(r, 20)); // the optimizing compiler works on another thread
      liftoff = isLiftoff(f);
    }
    console.log(liftoff ? "liftoff" : "optimized");
    if (typeof db !== "undefined") await db.close();`;
  const r = spawnSync(process.execPath, ["--allow-natives-syntax", "--import", "tsx", "--input-type=module", "-e", script], {
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test("sql.js's hot code is recompiled by default and in the server's mode, not after a baseline load or in place", (ctx) => {
  const control = tierAfterHotCalls("optimizing");
  if (control !== "optimized") return skip(ctx, "V8 did not recompile a hot function within ~1 s here (busy machine?)");
  assert.is(tierAfterHotCalls("baseline"), "liftoff", "loadSqlJs({ tier: 'baseline' })");
  assert.is(tierAfterHotCalls("in-place"), "liftoff", "a database opened in place (prosodyctl)");
  assert.is(tierAfterHotCalls("memory"), "optimized", "a database held in memory (the server)");
});

test.run();
