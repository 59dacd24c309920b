/**
 * The progress bar (cli-progress), drawn on stderr only when stderr is a terminal: a pipe, a file
 * or a test gets no escape sequences at all.
 */
import cliProgress from "cli-progress";

export interface Progress {
  /** Starts counting to `total` records. */
  start(total: number): void;
  /** One more record done; `label` names the store being moved. */
  tick(label: string): void;
  /** Writes a log line without breaking the bar. */
  print(stream: NodeJS.WritableStream, line: string): void;
  stop(): void;
}

export function createProgress(stderr: NodeJS.WriteStream | NodeJS.WritableStream): Progress {
  if (!(stderr as NodeJS.WriteStream).isTTY) {
    return { start() {}, tick() {}, print: (s, line) => void s.write(line), stop() {} };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: stderr as NodeJS.WriteStream,
      format: "Migrating [{bar}] {percentage}% | {value}/{total} records | {store}",
      hideCursor: true,
      clearOnComplete: true,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  let done = 0;
  return {
    start(total) {
      bar.start(total, 0, { store: "" });
      running = true;
    },
    tick(label) {
      done++;
      bar.update(done, { store: label });
    },
    print(stream, line) {
      // Clear the bar's line first (both usually share one terminal); the bar is drawn again on its next update.
      if (running) (stderr as NodeJS.WritableStream).write("\r\x1b[K");
      stream.write(line);
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}
