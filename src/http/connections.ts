/**
 * Per-connection bookkeeping of the HTTP server: the cap on concurrent connections per client
 * address, and answers to protocol errors that must wait for earlier pipelined responses.
 *
 * Why a cap per address: every connection costs a socket, a parser and (until its head or body
 * timeout) a timer; without a cap one client can hold thousands of half-open requests. The cap is
 * per address rather than global so that one client reaching it does not lock anyone else out.
 * Peers listed in `trusted_proxies` are not capped: behind a reverse proxy every client arrives
 * from the proxy's address, and capping it would cap everyone (the proxy applies its own limits).
 *
 * Why closing lingers: see lingerOnClose().
 *
 * Why errors wait: node's parser reports garbage after a complete request as soon as it reads
 * it, often while that request's handler is still running. Answering the 400 at once would cut
 * off the earlier request's answer; instead the 400 is written after every response already owed
 * on that connection has been sent, then the connection is closed.
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { normaliseIp } from "./request.js";

export interface ConnectionGuardOptions {
  /** Concurrent connections allowed per client address (0 or Infinity: no cap). */
  maxPerIp: number;
  /** Addresses never capped (reverse proxies). */
  exempt: ReadonlySet<string>;
  /** How long an error answer waits for earlier responses before the connection is cut. */
  errorWaitMs: number;
  onRefused?: (ip: string, open: number) => void;
}

/** What the guard needs of a request: node's IncomingMessage sets `complete` once its body is in. */
interface Owed {
  readonly req: { readonly complete: boolean };
}

interface SocketState {
  /** Requests on this connection whose response has not been written yet. */
  owed: Set<Owed>;
  /** An error answer waiting for the complete requests in `owed` to be answered. */
  deferred?: Buffer;
  /** An error answer was written (or is waiting): later parser errors are ignored. */
  answered: boolean;
}

/** How long a connection we closed after an error answer may linger before it is destroyed. */
const LINGER_MS = 2000;

export class ConnectionGuard {
  private readonly perIp = new Map<string, number>();
  private readonly states = new WeakMap<Duplex, SocketState>();
  private readonly lingering = new WeakSet<Duplex>();

  constructor(private readonly opts: ConnectionGuardOptions) {}

  /** Open connections per address (for tests and diagnostics). */
  openConnections(ip: string): number {
    return this.perIp.get(normaliseIp(ip)) ?? 0;
  }

  /** Called for every accepted socket; closes it at once when its address is over the cap. */
  accept(socket: Socket): void {
    const max = this.opts.maxPerIp;
    if (!(max > 0) || max === Infinity) return;
    const ip = normaliseIp(socket.remoteAddress);
    if (ip === "" || this.opts.exempt.has(ip)) return;
    const open = this.perIp.get(ip) ?? 0;
    if (open >= max) {
      this.opts.onRefused?.(ip, open);
      socket.destroy();
      return;
    }
    this.perIp.set(ip, open + 1);
    socket.once("close", () => {
      const n = (this.perIp.get(ip) ?? 1) - 1;
      if (n > 0) this.perIp.set(ip, n);
      else this.perIp.delete(ip);
    });
  }

  /**
   * A request arrived on `socket`: it owes a response. Returns the function to call once that
   * response has been written or can no longer be (safe to call more than once).
   */
  owe(socket: Duplex, req: { readonly complete: boolean }): () => void {
    const state = this.state(socket);
    const entry: Owed = { req };
    state.owed.add(entry);
    return () => {
      if (!state.owed.delete(entry)) return;
      if (state.deferred && !this.waiting(state)) {
        const bytes = state.deferred;
        state.deferred = undefined;
        // After node's own end-of-response handling for this socket.
        setImmediate(() => this.writeAndClose(socket, bytes));
      }
    };
  }

  /**
   * Answers a protocol error with `bytes` (a complete response) and closes the connection, after
   * the responses still owed to complete requests on it (a request whose body never completed
   * gets this answer instead). Later errors on the same connection are ignored.
   */
  answerError(socket: Duplex, bytes: Buffer): void {
    const state = this.state(socket);
    if (state.answered) return;
    state.answered = true;
    if (!this.waiting(state)) {
      this.writeAndClose(socket, bytes);
      return;
    }
    state.deferred = bytes;
    // A handler that never answers must not keep the connection forever.
    const timer = setTimeout(() => {
      if (state.deferred) socket.destroy();
    }, this.opts.errorWaitMs);
    timer.unref();
    socket.once("close", () => clearTimeout(timer));
  }

  /** Whether a complete request on this connection still waits for its response. */
  private waiting(state: SocketState): boolean {
    for (const entry of state.owed) if (entry.req.complete) return true;
    return false;
  }

  /**
   * After the current response, close the connection gently: send FIN but keep reading (and
   * discarding) what the client is still sending for up to LINGER_MS, then cut. Closing a socket
   * with unread input makes the kernel send a reset, which can destroy our answer (a 413 for a
   * body the client is still uploading) before the client has read it. Requests that arrive on the
   * connection meanwhile are not answered (`isLingering`).
   */
  lingerOnClose(socket: Socket): void {
    this.lingering.add(socket);
    // node ends a "Connection: close" exchange with destroySoon(): end, then destroy at once.
    socket.destroySoon = () => {
      if (!socket.writableEnded) socket.end();
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
      socket.once("end", () => socket.destroy());
    };
  }

  isLingering(socket: Duplex): boolean {
    return this.lingering.has(socket);
  }

  /** True once an error answer was written or queued for this connection. */
  hasAnswered(socket: Duplex): boolean {
    return this.states.get(socket)?.answered ?? false;
  }

  private state(socket: Duplex): SocketState {
    let state = this.states.get(socket);
    if (!state) {
      state = { owed: new Set(), answered: false };
      this.states.set(socket, state);
    }
    return state;
  }

  private writeAndClose(socket: Duplex, bytes: Buffer): void {
    if (socket.destroyed || !socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(bytes);
    // The client may still be sending; give it a moment to read the answer, then cut.
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  }
}
