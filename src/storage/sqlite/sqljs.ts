/** Loads sql.js (and instantiates its WebAssembly) once per process. */
import fs from "node:fs";
import { createRequire } from "node:module";
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

function wasmPath(): string {
  return createRequire(import.meta.url).resolve("sql.js/dist/sql-wasm.wasm");
}

async function load(): Promise<LoadedSqlJs> {
  let memory: WasmMemory | undefined;
  const bytes = await fs.promises.readFile(wasmPath());
  let fail!: (err: unknown) => void;
  // Emscripten's hook has no error callback: a failed instantiation rejects this one instead.
  const failed = new Promise<never>((_, reject) => (fail = reject));
  const SQL = await Promise.race([
    initSqlJs({
      instantiateWasm(imports: object, done: (instance: WasmInstance) => void) {
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

export function loadSqlJs(): Promise<LoadedSqlJs> {
  if (!loading) {
    loading = load().catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
  }
  return loading;
}
