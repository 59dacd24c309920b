/**
 * Internal storage shared by several of our processes (test/fixtures/internal/writer.ts):
 * concurrent map sets into one file lose nothing (the per-file cross-process lock), and a writer
 * killed with SIGKILL in the middle of its writes never leaves an unreadable file, loses no
 * acknowledged write, and does not block the others (the kernel frees its lock).
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import type { KeyvalStore } from "../../src/storage/types.js";
import { seededRandom } from "../helpers/seed.js";
import { recordOf } from "../helpers/records.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WRITER = path.join(ROOT, "test/fixtures/internal/writer.ts");
const { random } = seededRandom();
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-internal-mp-"));
process.on("exit", () => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let dirs = 0;
const newData = () => {
  const d = path.join(tmpRoot, String(dirs++));
  fs.mkdirSync(d);
  return d;
};

interface Child {
  proc: ChildProcessWithoutNullStreams;
  acked: Set<number>;
  stderr: () => string;
  /** Resolves once `n` writes were acknowledged. */
  ackedAtLeast(n: number, timeoutMs?: number): Promise<void>;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnWriter(args: string[]): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", WRITER, ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
  const acked = new Set<number>();
  let err = "";
  let buf = "";
  const waiters: (() => void)[] = [];
  proc.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const m = /^acked (\d+)$/.exec(line);
      if (m) acked.add(Number(m[1]));
    }
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("close", (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    acked,
    stderr: () => err,
    closed,
    async ackedAtLeast(n, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (acked.size < n) {
        if (Date.now() > deadline) throw new Error(`writer ${args.join(" ")}: only ${acked.size}/${n} acks; stderr: ${err}`);
        if (proc.exitCode !== null) throw new Error(`writer exited (${proc.exitCode}) after ${acked.size} acks; stderr: ${err}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
  };
}

const invites = (data: string) => createInternalProvider({ dataPath: data, host: "example.com" }).open("invite_token", "keyval") as KeyvalStore;

test("4 processes × 100 map sets of distinct keys into the same host-wide file: all 400 present", async () => {
  const data = newData();
  const t0 = performance.now();
  const kids = ["p0_", "p1_", "p2_", "p3_"].map((prefix) => spawnWriter(["mapset", data, prefix, "100"]));
  const results = await Promise.all(kids.map((k) => k.closed));
  const ms = performance.now() - t0;
  results.forEach((r, i) => assert.is(r.code, 0, `writer ${i} failed: ${kids[i]!.stderr()}`));
  const rec = recordOf(await invites(data).get(null));
  const keys = Object.keys(rec);
  assert.is(keys.length, 400);
  for (let p = 0; p < 4; p++) {
    for (let i = 0; i < 100; i++) {
      const v = rec[`p${p}_${i}`] as { n: number; writer: string } | undefined;
      assert.ok(v, `p${p}_${i} missing`);
      assert.is(v.n, i);
      assert.is(v.writer, `p${p}_`);
    }
  }
  const left = fs.readdirSync(path.join(data, "example%2ecom")).filter((n) => n !== "invite_token.dat");
  assert.equal(left, [], "no temporary files left");
  console.log(`  (400 map sets from 4 processes in ${(ms / 1000).toFixed(1)} s, process start-up included)`);
});

test("kill -9 during writes: the file stays readable, acknowledged writes stay, the others go on", async () => {
  const data = newData();
  const store = invites(data);
  const allAcked = new Map<string, number[]>();
  for (let round = 0; round < 5; round++) {
    const a = spawnWriter(["loop", data, `a${round}_`]);
    const b = spawnWriter(["loop", data, `b${round}_`]);
    await Promise.all([a.ackedAtLeast(3), b.ackedAtLeast(3)]);
    // Kill A at a random moment of its write cycle.
    await new Promise((r) => setTimeout(r, Math.floor(random() * 40)));
    a.proc.kill("SIGKILL");
    assert.is((await a.closed).signal, "SIGKILL");
    // Readable right now, while B keeps writing.
    const mid = await store.get(null);
    assert.ok(mid && Object.keys(mid).length > 0);
    // B is not blocked by a lock A may have held when it died.
    const before = b.acked.size;
    await b.ackedAtLeast(before + 3, 30_000);
    b.proc.kill("SIGKILL");
    await b.closed;
    allAcked.set(`a${round}_`, [...a.acked]);
    allAcked.set(`b${round}_`, [...b.acked]);
    const rec = recordOf(await store.get(null));
    for (const [prefix, acked] of allAcked) {
      for (const i of acked) assert.ok(rec[`${prefix}${i}`], `acknowledged ${prefix}${i} lost (round ${round})`);
    }
  }
  // Only invite_token.dat and (maybe) temporary files of the killed writers, which are no .dat files.
  for (const name of fs.readdirSync(path.join(data, "example%2ecom"))) {
    assert.ok(name === "invite_token.dat" || /^\.[0-9a-f]{12}\.tmp$/.test(name), name);
  }
});

test.run();
