/**
 * How this process uses the cross-process writer lock (lock.ts) of one database.
 *
 * The lock is kept after a commit until another process asks for it: while we hold it nobody else
 * can write, so the next commit skips acquiring it and checking the files, and reads skip their
 * freshness check. A busy single writer pays for neither the lock nor the file checks.
 */
import type { ProcessLock } from "./lock.js";

/**
 * - `free`: not held; another process may write (reads look at the files first).
 * - `working`: a commit or compaction is using it.
 * - `kept`: held between commits, our copy matching the files.
 */
export type LockUse = "free" | "working" | "kept";

/**
 * After a commit, while another process has asked for the lock within this many ms, hand it over
 * at once instead of keeping it: with writers in several processes, keeping and handing over on
 * request costs two more wake-ups per commit than releasing.
 */
const CONTENDED_MS = 250;

export class WriterLock {
  private state: LockUse = "free";

  constructor(
    private readonly lock: ProcessLock,
    private readonly isClosing: () => boolean,
  ) {
    // Another process waits for the lock we kept after a commit: hand it over now. A commit or
    // compaction using it hands it over when it ends.
    lock.onWaiter = () => {
      if (this.state === "kept") this.release();
    };
  }

  get use(): LockUse {
    return this.state;
  }

  /** We hold the lock (kept or working): nobody else can have written since our copy matched. */
  get exclusive(): boolean {
    return this.state !== "free";
  }

  get held(): boolean {
    return this.lock.held;
  }

  /**
   * Takes the lock for a commit or compaction (waiting for it unless kept). Resolves with whether
   * it was kept, i.e. our copy is known to match the files.
   */
  async take(): Promise<boolean> {
    const kept = this.state === "kept";
    if (!this.lock.held) await this.lock.acquire();
    this.state = "working";
    return kept;
  }

  /**
   * The work is over. `ok`: our copy matches the files; keep the lock unless another process waits
   * for it (or did so lately), or we are closing. Otherwise release it.
   */
  done(ok: boolean): void {
    if (ok && !this.lock.hasWaiters && !this.isClosing() && this.lock.sinceLastWaiter >= CONTENDED_MS) this.state = "kept";
    else this.release();
  }

  release(): void {
    this.state = "free";
    this.lock.release();
  }

  close(): void {
    this.release();
    this.lock.close();
  }
}
