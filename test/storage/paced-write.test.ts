/**
 * writePacedSync: a compaction image goes to disk in pieces, each flushed before the next (so the
 * journal syncs requests wait for never queue behind a whole image), and arrives intact.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { writePacedSync } from "../../src/storage/sqlite/atomic-file.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-paced-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

test("writes the data whole, flushing after every piece but the last, then fsyncs", () => {
  const data = Buffer.alloc(1000 * 1024 + 123);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  const file = path.join(root, "img");
  const fd = fs.openSync(file, "w");
  const calls: string[] = [];
  const { fdatasyncSync, fsyncSync, writeSync } = fs;
  let written = 0;
  fs.fdatasyncSync = (f) => {
    calls.push(`datasync@${written}`);
    fdatasyncSync(f);
  };
  fs.fsyncSync = (f) => {
    calls.push(`fsync@${written}`);
    fsyncSync(f);
  };
  fs.writeSync = ((...args: Parameters<typeof fs.writeSync>) => {
    const n = (writeSync as (...a: unknown[]) => number)(...args);
    written += n;
    return n;
  }) as typeof fs.writeSync;
  try {
    writePacedSync(fd, data, 256 * 1024);
  } finally {
    Object.assign(fs, { fdatasyncSync, fsyncSync, writeSync });
    fs.closeSync(fd);
  }
  assert.equal(calls, ["datasync@262144", "datasync@524288", "datasync@786432", `fsync@${data.length}`]);
  assert.ok(fs.readFileSync(file).equals(data));
});

test.run();
