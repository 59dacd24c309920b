/**
 * The order of a big data file's replacement (src/storage/internal/data-files.ts): the descriptor
 * the parse cache kept on the replaced inode is closed only after the directory has been synced
 * (that close frees the old inode's blocks, which the directory's sync would otherwise wait for),
 * and it is closed, on the spliced path and on a full rewrite alike.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DataFiles } from "../../src/storage/internal/data-files.js";
import { ParseCache } from "../../src/storage/internal/parse-cache.js";
import type { StoreRecord } from "../../src/storage/types.js";

const invite = (i: number): StoreRecord => ({ token: `t${i}`, type: "register", created_at: 1700000000 + i, additional_data: { source: "x" } });

/** Runs `write` recording, in order, the directory's syncs and the close of descriptor `fd`. */
async function observe(dir: string, fd: number, write: () => Promise<void>): Promise<string[]> {
  const events: string[] = [];
  const realClose = fs.close;
  const realOpen = fsp.open;
  (fs as { close: unknown }).close = (...args: unknown[]) => {
    if (args[0] === fd) events.push("old inode closed");
    return (realClose as (...a: unknown[]) => unknown)(...args);
  };
  (fsp as { open: unknown }).open = async (...args: unknown[]) => {
    const fh = await (realOpen as (...a: unknown[]) => Promise<fsp.FileHandle>)(...args);
    if (args[0] === dir) {
      const sync = fh.sync.bind(fh);
      fh.sync = async () => {
        await sync();
        events.push("directory synced");
      };
    }
    return fh;
  };
  try {
    await write();
    await new Promise((r) => setTimeout(r, 20)); // a close still queued would show now
  } finally {
    (fs as { close: unknown }).close = realClose;
    (fsp as { open: unknown }).open = realOpen;
  }
  return events;
}

test("the replaced inode's descriptor is closed after the directory's sync, spliced or rewritten", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-replace-"));
  try {
    const cache = new ParseCache();
    const files = new DataFiles(cache, () => {});
    const file = path.join(dir, "example%2ecom", "invite_token.dat");
    const rec: StoreRecord = {};
    for (let i = 0; i < 2000; i++) rec[`tok${i}`] = invite(i);
    await files.write(file, { ...rec }); // the cache keeps (and a splice changes) the record written
    const hostDir = path.dirname(file);

    // A splice (one new member): the hot path of invite creation.
    const first = cache.current(file)!;
    const oldFd = first.pin!.fd;
    const spliced = await observe(hostDir, oldFd, async () => {
      assert.is(await files.writeChanges(file, first, [["new1", invite(9999)]]), "done");
    });
    assert.equal(spliced, ["directory synced", "old inode closed"]);
    assert.ok(cache.current(file)!.pin && cache.current(file)!.pin!.fd !== oldFd, "the entry holds the new inode");

    // A full rewrite of the cached file.
    const againFd = cache.current(file)!.pin!.fd;
    const rewritten = await observe(hostDir, againFd, () => files.write(file, { ...rec, other: invite(1) }));
    assert.equal(rewritten, ["directory synced", "old inode closed"]);
    const { rec: now } = await files.readShared(file);
    assert.equal(Object.keys(now!).length, 2001);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
