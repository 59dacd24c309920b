/**
 * The private PostgreSQL cluster of test/helpers/postgres.ts stops by itself: when the test
 * process exits, and when it is killed (SIGKILL: no exit handler runs; the watchdog does it).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { postgresMissing } from "../helpers/postgres.js";
import { skipIf } from "../helpers/skip.js";

const CHILD = join(import.meta.dirname, "../fixtures/storage/pg-cluster-child.ts");

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.on("connect", () => (s.destroy(), resolve(true)));
    s.on("error", () => resolve(false));
  });

async function startChild(mode: "exit" | "wait") {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, mode], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  const info = await new Promise<{ dir: string; port: number }>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (d) => (out += d).includes("\n") && resolve(JSON.parse(out.split("\n")[0]!)));
    child.on("exit", (code) => !out.includes("\n") && reject(new Error(`child exited ${code} before starting a cluster`)));
  });
  const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.on("exit", () => resolve())));
  return { child, info, exited };
}

async function gone(info: { dir: string; port: number }, seconds: number): Promise<boolean> {
  for (let i = 0; i < seconds * 10; i++) {
    if (!existsSync(info.dir) && !(await listening(info.port))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

const pgTest = skipIf(test, postgresMissing());

pgTest("the cluster is stopped and removed when the test process exits", async () => {
  const { info, exited } = await startChild("exit");
  await exited;
  assert.ok(await gone(info, 5), `cluster in ${info.dir} (port ${info.port}) still there`);
});

pgTest("the cluster is stopped and removed when the test process is killed", async () => {
  const { child, info, exited } = await startChild("wait");
  assert.ok(await listening(info.port), "running while its process lives");
  child.kill("SIGKILL");
  await exited;
  assert.ok(await gone(info, 15), `cluster in ${info.dir} (port ${info.port}) still there`);
});

test.run();
