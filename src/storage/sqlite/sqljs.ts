/** Loads sql.js (and instantiates its WebAssembly) once per process. */
import initSqlJs from "sql.js";
import type { SqlJsStatic } from "sql.js";

let loading: Promise<SqlJsStatic> | undefined;

export function loadSqlJs(): Promise<SqlJsStatic> {
  if (!loading) {
    loading = initSqlJs().catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
  }
  return loading;
}
