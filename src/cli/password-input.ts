/**
 * Reading a password for adduser/passwd: from a terminal without echo (Ctrl-C interrupts), or
 * line by line from a pipe. Small on purpose: prosodyctl loads it only when a command (run here
 * or in the server, through the admin socket) asks for a password.
 */
import { INTERRUPTED, type PasswordInput } from "./io.js";

type InputStream = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

export function openPasswordInput(stream: InputStream): PasswordInput {
  return stream.isTTY && typeof stream.setRawMode === "function" ? terminalInput(stream) : lineInput(stream);
}

/** Lines from a pipe or file. */
function lineInput(stream: NodeJS.ReadableStream): PasswordInput {
  const lines: string[] = [];
  const waiting: Array<() => void> = [];
  let partial = "";
  let ended = false;
  let started = false;
  const wake = () => {
    while (waiting.length) waiting.shift()!();
  };
  const onData = (chunk: string | Buffer) => {
    partial += chunk.toString();
    let nl: number;
    while ((nl = partial.indexOf("\n")) >= 0) {
      lines.push(partial.slice(0, nl).replace(/\r$/, ""));
      partial = partial.slice(nl + 1);
    }
    wake();
  };
  const onEnd = () => {
    if (partial !== "") lines.push(partial);
    partial = "";
    ended = true;
    wake();
  };
  const start = () => {
    if (started) return;
    started = true;
    stream.setEncoding("utf8");
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.once("error", onEnd);
    stream.resume();
  };
  const next = async (): Promise<string | undefined> => {
    start();
    while (!lines.length && !ended) await new Promise<void>((r) => waiting.push(r));
    return lines.shift();
  };
  return {
    readSecret: next,
    readChoice: async () => (await next())?.charAt(0),
    close() {
      if (!started) return;
      stream.removeListener("data", onData);
      stream.removeListener("end", onEnd);
      stream.removeListener("error", onEnd);
      stream.pause();
      // Let the process exit even though stdin is still open.
      (stream as { unref?: () => void }).unref?.();
      ended = true;
      wake();
    },
  };
}

/** Keys from a terminal in raw mode: nothing is echoed; Backspace, Ctrl-U, Ctrl-C and Ctrl-D work. */
function terminalInput(stream: NodeJS.ReadableStream & { setRawMode?: (raw: boolean) => unknown }): PasswordInput {
  let pending = "";
  let ended = false;
  let raw = false;
  let waiter: (() => void) | undefined;
  const onData = (chunk: string | Buffer) => {
    pending += chunk.toString();
    waiter?.();
  };
  const onEnd = () => {
    ended = true;
    waiter?.();
  };
  const ensureRaw = () => {
    if (raw) return;
    raw = true;
    stream.setRawMode!(true);
    stream.setEncoding("utf8");
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.resume();
  };
  const more = () => new Promise<void>((r) => (waiter = r)).finally(() => (waiter = undefined));

  return {
    async readSecret() {
      ensureRaw();
      let line = "";
      for (;;) {
        while (pending === "") {
          if (ended) return line === "" ? undefined : line;
          await more();
        }
        const chars = [...pending];
        pending = "";
        for (let i = 0; i < chars.length; i++) {
          const c = chars[i]!;
          if (c === "\r" || c === "\n") {
            // Keep what was typed ahead for the next prompt ("\r\n" counts once).
            pending = chars.slice(c === "\r" && chars[i + 1] === "\n" ? i + 2 : i + 1).join("");
            return line;
          }
          if (c === "\u0003") return INTERRUPTED;
          if (c === "\u0004") {
            if (line === "") return undefined;
            continue;
          }
          if (c === "\u007f" || c === "\b") line = [...line].slice(0, -1).join("");
          else if (c === "\u0015") line = "";
          else if (c === "\u001b") {
            // Skip an escape sequence (arrow keys and the like).
            if (chars[i + 1] === "[" || chars[i + 1] === "O") {
              i += 2;
              while (i < chars.length && !/[A-Za-z~]/.test(chars[i]!)) i++;
            }
          } else if (c >= " ") line += c;
        }
      }
    },
    async readChoice() {
      ensureRaw();
      while (pending === "") {
        if (ended) return undefined;
        await more();
      }
      const [c, ...rest] = [...pending];
      pending = rest.join("");
      return c === "\u0003" ? INTERRUPTED : c;
    },
    close() {
      if (!raw) return;
      raw = false;
      stream.setRawMode!(false);
      stream.removeListener("data", onData);
      stream.removeListener("end", onEnd);
      stream.pause();
    },
  };
}
