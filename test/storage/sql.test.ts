import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createSqlProvider, openSqlDatabase } from "../../src/storage/drivers/sql.js";
import { storageConformance } from "./conformance.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-sql-"));
let n = 0;

storageConformance("sql", async () => {
  const dir = path.join(root, String(n++));
  const db = await openSqlDatabase(path.join(dir, "prosody.sqlite"));
  return {
    provider: createSqlProvider({ host: "example.com", db }),
    cleanup: async () => {
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}).run();

process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
