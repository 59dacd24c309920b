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

/** A server's answer to one of our iq requests: a result, or an error with its condition and text. */
export type IqOutcome = { ok: true } | { ok: false; condition: string; text?: string };

export interface InBandRegistration {
  /** The stream features' namespaces offered before registration (e.g. urn:xmpp:ibr-token:0). */
  features: string[];
  /** The answer to the XEP-0445 preauth iq, when a token was given. */
  preauth?: IqOutcome;
  /** The answer to the jabber:iq:register set (sent whatever the preauth answer was). */
  register: IqOutcome;
}

const xmlEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/'/g, "&apos;").replace(/"/g, "&quot;");
const xmlUnescape = (s: string) =>
  s.replace(/&(lt|gt|quot|apos|amp);/g, (_, e: string) => ({ lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" })[e]!);

/**
 * XEP-0077 in-band registration over plain TCP, optionally preceded by XEP-0445's
 * `<preauth xmlns='urn:xmpp:pars:0' token='…'/>` iq (what an invite's `xmpp:…?register;preauth=…`
 * URI makes a client send). The register iq goes out even when the preauth is refused, so a test
 * sees what the server does with an unvalidated registration. Resolves with both answers.
 */
export function registerInBand(port: number, host: string, user: string, password: string, token?: string, timeoutMs = 10000): Promise<InBandRegistration> {
  return new Promise((resolveReg, reject) => {
    const sock = new Socket();
    let buf = "";
    const out: Partial<InBandRegistration> = {};
    let waiting: "features" | "preauth" | "register" = "features";
    const timer = setTimeout(() => done(new Error(`in-band registration timed out waiting for ${waiting}; received: ${buf.slice(-500)}`)), timeoutMs);
    const done = (result: InBandRegistration | Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (result instanceof Error) reject(result);
      else resolveReg(result);
    };
    const sendRegister = () => {
      waiting = "register";
      sock.write(
        `<iq type='set' id='reg1' to='${xmlEscape(host)}'><query xmlns='jabber:iq:register'>` +
          `<username>${xmlEscape(user)}</username><password>${xmlEscape(password)}</password></query></iq>`,
      );
    };
    /** The answer to the iq with this id, once it has arrived whole. */
    const answer = (id: string): IqOutcome | undefined => {
      for (const m of buf.matchAll(/<iq\b([^>]*?)(?:\/>|>([\s\S]*?)<\/iq>)/g)) {
        const attrs = m[1]!;
        if (!new RegExp(`\\bid=['"]${id}['"]`).test(attrs)) continue;
        if (/\btype=['"]result['"]/.test(attrs)) return { ok: true };
        const body = m[2] ?? "";
        const condition = /<([a-z-]+)\s[^>]*xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]/.exec(body.replace(/<text\b[\s\S]*?<\/text>/, ""))?.[1] ?? "unknown";
        const text = /<text\b[^>]*>([\s\S]*?)<\/text>/.exec(body)?.[1];
        return text === undefined ? { ok: false, condition } : { ok: false, condition, text: xmlUnescape(text) };
      }
      return undefined;
    };
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      buf += d;
      if (waiting === "features") {
        const end = buf.indexOf("</stream:features>");
        if (end < 0) return;
        out.features = [...buf.slice(0, end).matchAll(/<[a-z-]+\s[^>]*xmlns=['"]([^'"]+)['"]/g)].map((m) => m[1]!);
        buf = buf.slice(end);
        if (token === undefined) return sendRegister();
        waiting = "preauth";
        sock.write(`<iq type='set' id='pa1' to='${xmlEscape(host)}'><preauth xmlns='urn:xmpp:pars:0' token='${xmlEscape(token)}'/></iq>`);
      } else if (waiting === "preauth") {
        out.preauth = answer("pa1");
        if (out.preauth) sendRegister();
      } else {
        const register = answer("reg1");
        if (register) done({ features: out.features!, ...(out.preauth ? { preauth: out.preauth } : {}), register });
      }
    });
    sock.on("error", (e) => done(e));
    sock.connect(port, "127.0.0.1", () =>
      sock.write(`<?xml version='1.0'?><stream:stream to='${xmlEscape(host)}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`),
    );
  });
}
