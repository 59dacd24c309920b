/** Starts test/helpers/lock-holder.ts in its own process and controls it. */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const SCRIPT = path.resolve(import.meta.dirname, "lock-holder.ts");
const ROOT = path.resolve(import.meta.dirname, "../..");

export interface HeldLock {
  /** Lets go of the lock and waits for the holder to exit. */
  release(): Promise<void>;
}

/** `dataPath`: for `internal`, the data directory `file` is in (the lock lives there). */
export function holdLockInAnotherProcess(kind: "internal" | "sql", file: string, dataPath?: string): Promise<HeldLock> {
  const releaseFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-release-")), "go");
  const child = spawn(process.execPath, ["--import", "tsx", SCRIPT, kind, file, releaseFile, ...(dataPath ? [dataPath] : [])], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  let out = "";
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (d) => (err += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`lock holder did not take the lock within 30 s: ${err}`));
    }, 30_000);
    child.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
      if (!out.includes("held\n")) return;
      clearTimeout(timer);
      resolve({
        async release() {
          fs.writeFileSync(releaseFile, "");
          await exited;
          fs.rmSync(path.dirname(releaseFile), { recursive: true, force: true });
        },
      });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (!out.includes("held\n")) reject(new Error(`lock holder exited (${code}) without taking the lock: ${err}`));
    });
  });
}
