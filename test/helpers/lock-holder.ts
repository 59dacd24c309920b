/**
 * Another process holding one of our storage locks, for tests of what a held lock does:
 *
 *   node --import tsx test/helpers/lock-holder.ts internal <data file> <release file> <data path>
 *   node --import tsx test/helpers/lock-holder.ts sql <database file> <release file>
 *
 * Prints "held" once it holds the lock, and lets go (and exits) once <release file> exists.
 * `internal` takes the lock every write of that data file takes; `sql` holds the database's write
 * lock inside a transaction (its event loop blocked meanwhile, as a busy or stuck writer would be).
 * Both go through the drivers' own code, so they follow whatever the lock is made of.
 */
import fs from "node:fs";
import { holdFileLock } from "../../src/storage/drivers/internal.js";
import { openSqlDatabase } from "../../src/storage/drivers/sql.js";

const [kind, file, releaseFile, dataPath] = process.argv.slice(2);
if (!kind || !file || !releaseFile) {
  console.error("usage: lock-holder.ts internal|sql FILE RELEASE_FILE");
  process.exit(2);
}

if (kind === "internal") {
  if (!dataPath) {
    console.error("usage: lock-holder.ts internal FILE RELEASE_FILE DATA_PATH");
    process.exit(2);
  }
  const release = await holdFileLock(dataPath, file);
  fs.writeSync(1, "held\n");
  const timer = setInterval(() => {
    if (!fs.existsSync(releaseFile)) return;
    clearInterval(timer);
    release();
  }, 10);
} else if (kind === "sql") {
  const db = await openSqlDatabase(file);
  await db.engine.sqlite.transaction(() => {
    fs.writeSync(1, "held\n");
    while (!fs.existsSync(releaseFile)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  });
  await db.close();
} else {
  console.error(`unknown lock kind ${kind}`);
  process.exit(2);
}
