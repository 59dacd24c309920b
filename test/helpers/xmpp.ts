/**
 * A minimal XMPP client for one thing: a SASL SCRAM-SHA-1 login over plain TCP (RFC 6120 + RFC
 * 5802), answering whether the server accepted the credentials. Enough to prove that an account
 * record we wrote works for real Prosody. Not a general XMPP library.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { saslprep } from "../../src/util/scram.js";

export type LoginResult = { ok: true } | { ok: false; condition: string; mechanisms: string[] };

/**
 * @param opts.starttls negotiate STARTTLS first when the server offers it (certificate not
 *   verified: a test server's self-signed one), e.g. for Prosody's default c2s_require_encryption
 */
export function scramLogin(port: number, host: string, user: string, password: string, timeoutMs = 10000, opts: { starttls?: boolean } = {}): Promise<LoginResult> {
  return new Promise((resolveLogin, reject) => {
    const sock = new Socket();
    let conn: Socket | TLSSocket = sock;
    let secured = false;
    let tlsRequested = false;
    let buf = "";
    let stage: "features" | "challenge" | "outcome" = "features";
    let clientFirstBare = "";
    let cnonce = "";
    let mechanisms: string[] = [];
    const timer = setTimeout(() => done(new Error(`XMPP login timed out at stage ${stage}; received: ${buf.slice(-500)}`)), timeoutMs);
    const done = (result: LoginResult | Error) => {
      clearTimeout(timer);
      conn.destroy();
      sock.destroy();
      if (result instanceof Error) reject(result);
      else resolveLogin(result);
    };
    const send = (s: string) => conn.write(s);
    const streamHeader = () =>
      send(`<?xml version='1.0'?><stream:stream to='${host}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`);
    const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");
    const hmac = (key: Buffer, data: string) => createHmac("sha1", key).update(data).digest();

    const onData = (d: string) => {
      buf += d;
      if (stage === "features" && opts.starttls && !secured && buf.includes("<proceed")) {
        // Upgrade in place, then restart the stream over TLS (RFC 6120 §5.4.3.3).
        secured = true;
        buf = "";
        sock.removeAllListeners("data");
        const tlsSock = tlsConnect({ socket: sock, servername: host, rejectUnauthorized: false }, () => streamHeader());
        tlsSock.setEncoding("utf8");
        tlsSock.on("data", onData);
        tlsSock.on("error", (e) => done(e));
        conn = tlsSock;
        return;
      }
      if (stage === "features") {
        if (!buf.includes("</stream:features>")) return;
        if (opts.starttls && !secured && buf.includes("urn:ietf:params:xml:ns:xmpp-tls")) {
          if (!tlsRequested) send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
          tlsRequested = true;
          return;
        }
        mechanisms = [...buf.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1]!);
        if (!mechanisms.includes("SCRAM-SHA-1")) return done({ ok: false, condition: "no-scram-sha-1", mechanisms });
        cnonce = randomBytes(18).toString("base64").replace(/[=,]/g, "");
        clientFirstBare = `n=${user.replace(/=/g, "=3D").replace(/,/g, "=2C")},r=${cnonce}`;
        buf = "";
        stage = "challenge";
        send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>${b64(`n,,${clientFirstBare}`)}</auth>`);
      } else if (stage === "challenge") {
        const failure = /<failure[^>]*>(?:<([a-z-]+))?/.exec(buf);
        if (failure) return done({ ok: false, condition: failure[1] ?? "failure", mechanisms });
        const m = /<challenge[^>]*>([^<]*)<\/challenge>/.exec(buf);
        if (!m) return;
        const serverFirst = Buffer.from(m[1]!, "base64").toString("utf8");
        const attrs = Object.fromEntries(serverFirst.split(",").map((kv) => [kv[0], kv.slice(2)]));
        if (!attrs.r?.startsWith(cnonce)) return done(new Error(`server nonce does not extend ours: ${serverFirst}`));
        const salted = pbkdf2Sync(saslprep(password) ?? password, Buffer.from(attrs.s!, "base64"), Number(attrs.i), 20, "sha1");
        const clientKey = hmac(salted, "Client Key");
        const storedKey = createHash("sha1").update(clientKey).digest();
        const withoutProof = `c=biws,r=${attrs.r}`;
        const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
        const signature = hmac(storedKey, authMessage);
        const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
        buf = "";
        stage = "outcome";
        send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${b64(`${withoutProof},p=${proof.toString("base64")}`)}</response>`);
      } else {
        if (/<success/.test(buf)) return done({ ok: true });
        const failure = /<failure[^>]*>(?:<([a-z-]+))?/.exec(buf);
        if (failure) return done({ ok: false, condition: failure[1] ?? "failure", mechanisms });
      }
    };
    sock.setEncoding("utf8");
    sock.on("data", onData);
    sock.on("error", (e) => done(e));
    sock.connect(port, "127.0.0.1", streamHeader);
  });
}
