/** Loads sql.js (and instantiates its WebAssembly) once per process. */
import fs from "node:fs";
import { createRequire } from "node:module";
import v8 from "node:v8";
import initSqlJs from "sql.js";
import type { SqlJsStatic } from "sql.js";

/** The parts of the WebAssembly API used here (this project's TypeScript libs have no DOM types). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmInstance {
  exports: Record<string, unknown>;
}
interface WasmApi {
  instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: WasmInstance }>;
  Memory: abstract new (...args: never[]) => WasmMemory;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export interface LoadedSqlJs {
  SQL: SqlJsStatic;
  /**
   * The module's linear memory. sql.js does not export it; we get it by instantiating the
   * WebAssembly ourselves (Emscripten's documented `instantiateWasm` hook), so raw-sqlite.ts can
   * pass parameters and read results without sql.js's per-byte JavaScript copying.
   */
  memory: WasmMemory;
}

let loading: Promise<LoadedSqlJs> | undefined;

/** How V8 compiles sql.js's WebAssembly (see loadSqlJs); the first load decides. */
export type SqlJsTier = "optimizing" | "baseline";

function wasmPath(): string {
  return createRequire(import.meta.url).resolve("sql.js/dist/sql-wasm.wasm");
}

/** Whether node was started with V8 flags about WebAssembly compilation (then left as they are). */
function wasmFlagsGiven(): boolean {
  const args = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)];
  return args.some((a) => /^--[a-z_-]*(liftoff|wasm)/i.test(a));
}

async function load(tier: SqlJsTier): Promise<LoadedSqlJs> {
  let memory: WasmMemory | undefined;
  const bytes = await fs.promises.readFile(wasmPath());
  let fail!: (err: unknown) => void;
  // Emscripten's hook has no error callback: a failed instantiation rejects this one instead.
  const failed = new Promise<never>((_, reject) => (fail = reject));
  const SQL = await Promise.race([
    initSqlJs({
      instantiateWasm(imports: object, done: (instance: WasmInstance) => void) {
        // A V8 flag for the whole process, and for good: V8 decides whether to recompile a hot
        // function when it gets hot, by the flags of that moment (checked: putting them back
        // after compiling lets sql.js's code be recompiled again).
        if (tier === "baseline" && !wasmFlagsGiven()) v8.setFlagsFromString("--liftoff-only");
        WA.instantiate(bytes, imports).then(({ instance }) => {
          memory = Object.values(instance.exports).find((x): x is WasmMemory => x instanceof WA.Memory);
          done(instance);
        }, fail);
        return {};
      },
    } as Parameters<typeof initSqlJs>[0]),
    failed,
  ]);
  if (!memory) throw new Error("sql.js: its WebAssembly module exports no memory (unsupported sql.js build)");
  return { SQL, memory };
}

/**
 * sql.js, loaded once per process. `tier: "baseline"` (short-lived processes: prosodyctl, which
 * opens its databases in place) has V8 compile WebAssembly with its baseline compiler only
 * (Liftoff), from then on in this process (V8's `--liftoff-only`; left alone when node was started
 * with flags about WebAssembly). By default V8 also recompiles every function that gets hot
 * (SQLite's page and b-tree code, as soon as a database is loaded) with its optimizing compiler on
 * background threads, and node waits for those jobs whenever its event loop runs empty, at the
 * latest before exiting: measured ~180 ms of CPU on other threads, and 70-100 ms of a cold
 * `prosodyctl mod_invites_api list` at 100k invites. The price, ~20 % slower SQL on large work (a
 * 200k-row insert and index), matters to the server, which keeps the default.
 */
export function loadSqlJs(opts: { tier?: SqlJsTier } = {}): Promise<LoadedSqlJs> {
  if (!loading) {
    loading = load(opts.tier ?? "optimizing").catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
  }
  return loading;
}
