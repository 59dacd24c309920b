/** Runs the built prosody-migrator shim, and makes and compares the data it moves. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import type { KeyvalStore, StoreRecord } from "../../src/storage/types.js";
import type { Ran } from "./cli.js";

export const MIGRATOR = resolve(import.meta.dirname, "../../prosodyctl-shim/prosody-migrator");

export function startMigrator(args: string[], opts: { cwd?: string } = {}): { child: ChildProcess; done: Promise<Ran> } {
  const child = spawn(process.execPath, [MIGRATOR, ...args], { cwd: opts.cwd ?? tmpdir(), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d) => (stderr += d));
  const done = new Promise<Ran>((res, rej) => {
    child.on("error", rej);
    child.on("close", (code) => res({ stdout, stderr, code }));
  });
  return { child, done };
}

export const migrator = (args: string[], opts: { cwd?: string } = {}): Promise<Ran> => startMigrator(args, opts).done;

/** A temporary directory holding migrator.cfg.lua with `body` (`$DIR` replaced by the directory). */
export function migratorConfig(body: string, dir = mkdtempSync(join(tmpdir(), "prosody-ts-mig-"))): { dir: string; config: string } {
  const config = join(dir, "migrator.cfg.lua");
  writeFileSync(config, body.replaceAll("$DIR", dir));
  return { dir, config };
}

/** Values that are hard to carry over: unicode, quotes, escapes, `__proto__`, nesting, numbers. */
export function oddValue(i: number): StoreRecord {
  return {
    type: "register",
    inviter: i % 3 ? `user${i}` : "ünïcødé ✓ 😀",
    created_at: 1_700_000_000 + i,
    expires: 1_700_604_800 + i,
    reusable: i % 2 === 0,
    ratio: i + 0.5,
    negative: -i,
    big: 2 ** 53 - 1 - i,
    text: `quotes " ' \\ tab\t newline\n nul-free ${i}`,
    ["__proto__"]: `proto ${i}`,
    nested: { a: { b: [1, 2, { c: "d", ["__proto__"]: { x: [true, false] } }] }, list: ["x", "y"] },
    "odd key \" '": "v",
  };
}

/**
 * Writes a data directory with our internal driver: accounts (odd user names), a host-wide
 * invite_token record of `invites` invites, API keys, a second host with per-user and host-wide
 * records.
 */
export async function seedInternal(dataPath: string, invites: number, users = 5): Promise<void> {
  const kv = (host: string, store: string) => createInternalProvider({ dataPath, host }).open(store, "keyval") as KeyvalStore;
  const accounts = kv("example.com", "accounts");
  const names = ["alice", "ünï", "quote\"'", "__proto__", "with space"];
  for (let i = 0; i < users; i++) {
    const name = names[i] ?? `user${i}`;
    // Top-level keys sorted: the order the migrator writes (SQL keeps none), so files come back byte for byte.
    await accounts.set(name, { iteration_count: 4096, salt: `salt${i}`, server_key: "ab".repeat(20), stored_key: "00ff".repeat(10) });
  }
  const tokens: StoreRecord = {};
  for (let i = 0; i < invites; i++) tokens[`tok${String(i).padStart(6, "0")}`] = oddValue(i);
  await kv("example.com", "invite_token").set(null, tokens);
  await kv("example.com", "invite_api_keys").set(null, { "key\"2": { name: "ünï" }, key1: { name: "k1", created: 1700000000 } });
  await kv("conf.example.org", "vcard").set("bob", { fn: "Bob ✓", photo: "x".repeat(300) });
  await kv("conf.example.org", "settings").set(null, { limits: [1, 2, 3], theme: "dark" });
}

/** Every file under `dir` (our lock directory left out): relative path → bytes. */
export function treeBytes(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name === ".prosody-ts-locks") continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, `${rel}${e.name}/`);
      else out.set(`${rel}${e.name}`, readFileSync(p));
    }
  };
  walk(dir, "");
  return out;
}

/** The modification times of the files of treeBytes(dir). */
export function treeTimes(dir: string): Map<string, number> {
  return new Map([...treeBytes(dir).keys()].map((k) => [k, statSync(join(dir, k)).mtimeMs]));
}
