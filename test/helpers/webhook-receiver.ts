/**
 * A webhook receiver on loopback for the tests: verifies each delivery's signature as a real
 * receiver would (the README's recipe), records every delivery, and can be told to answer 500 or
 * to hold a request unanswered.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Delivery {
  id: string;
  event: string;
  body: { id: string; type: string; host: string; created_at: number; data: Record<string, any> };
  signatureOk: boolean;
  /** What the receiver answered (0: held, never answered). */
  answered: number;
}

/** The verification recipe: HMAC-SHA256(secret, "<timestamp>.<raw body>"), hex, in v1=. */
export function verify(secret: string, headers: IncomingMessage["headers"], raw: Buffer, toleranceS = 300): boolean {
  const ts = String(headers["prosody-webhook-timestamp"] ?? "");
  const sig = String(headers["prosody-webhook-signature"] ?? "");
  const parts = Object.fromEntries(sig.split(",").map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]));
  if (!/^\d+$/.test(ts) || parts.t !== ts || !parts.v1) return false;
  if (Math.abs(Date.now() / 1000 - Number(ts)) > toleranceS) return false;
  const expected = createHmac("sha256", secret).update(`${ts}.`).update(raw).digest();
  const given = Buffer.from(parts.v1, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** Decides each answer: a status, a status with a Location, or "hold" (never answer). Default 204. */
  answer: (d: Delivery, index: number) => number | { status: number; location: string } | "hold";
  /** Resolves once `pred` holds over the deliveries (checked on each one), or rejects after `ms`. */
  until(pred: (d: Delivery[]) => boolean, ms: number, what: string): Promise<void>;
  /** Distinct event ids by event name. */
  uniqueByEvent(): Record<string, number>;
  close(): Promise<void>;
}

export async function startReceiver(secret: string): Promise<Receiver> {
  const held: ServerResponse[] = [];
  const waiters = new Set<() => void>();
  const receiver: Receiver = {
    url: "",
    deliveries: [],
    answer: () => 204,
    until(pred, ms, what) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pred(receiver.deliveries)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`receiver: ${what} not reached within ${ms} ms; got ${JSON.stringify(receiver.deliveries.map((d) => [d.event, d.id.slice(0, 8), d.answered]))}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    uniqueByEvent() {
      const out: Record<string, Set<string>> = {};
      for (const d of receiver.deliveries) (out[d.event] ??= new Set()).add(d.id);
      return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.size]));
    },
    async close() {
      for (const r of held) r.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const body = JSON.parse(raw.toString("utf8"));
      const d: Delivery = {
        id: String(req.headers["prosody-webhook-id"]),
        event: String(req.headers["prosody-webhook-event"]),
        body,
        signatureOk: verify(secret, req.headers, raw) && body.id === req.headers["prosody-webhook-id"],
        answered: 0,
      };
      const index = receiver.deliveries.push(d) - 1;
      const a = receiver.answer(d, index);
      if (a === "hold") held.push(res);
      else {
        d.answered = typeof a === "number" ? a : a.status;
        res.statusCode = d.answered;
        if (typeof a === "object") res.setHeader("Location", a.location);
        res.end();
      }
      for (const w of [...waiters]) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return receiver;
}
