/**
 * NODE_EXTRA_CA_CERTS for a process that node started without it.
 *
 * Node 20 builds its whole TLS root store at start-up whenever NODE_EXTRA_CA_CERTS is set (its
 * bundled roots, then the file's certificates): 20–40 ms of every process, before any code runs,
 * when a prosodyctl command the server runs takes ~35 ms in all. Without the variable node builds
 * that store on the first TLS connection, which most commands never make. So prosodyctl's
 * executable has `env` start node without it (prosodyctl-shim/prosodyctl, first line), handing the
 * value over as PROSODY_TS_NODE_EXTRA_CA_CERTS; the executable's bundle records it first thing and
 * puts NODE_EXTRA_CA_CERTS back for the processes it starts (util/extra-ca-handover.ts).
 *
 * In that process the same certificates are trusted, added on first use, by what makes TLS
 * connections: Node's https global agent (node-fetch and https.request/get without an agent of
 * their own; installed by prosodyctl's main()) and PostgreSQL connections with TLS
 * (storage/drivers/sql-pg.ts). A plugin that connects through tls.connect or fetch() (undici)
 * itself sees only Node's roots: the README says so.
 */
import https from "node:https";
import type { RequestOptions } from "node:https";
import { readFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import { createSecureContext, rootCertificates, type SecureContext } from "node:tls";
import { deferredExtraCa } from "./extra-ca-handover.js";

/**
 * Node's roots plus the deferred file's certificates, built once; undefined when nothing was
 * deferred or the file cannot be used. That case is one warning on stderr worded as Node's own at
 * start-up, and Node's roots alone, as Node does.
 */
export function extraCaContext(): SecureContext | undefined {
  const deferred = deferredExtraCa();
  if (!deferred) return undefined;
  if (deferred.context === undefined) {
    try {
      deferred.context = createSecureContext({ ca: [...rootCertificates, readFileSync(deferred.file)] });
    } catch (err) {
      deferred.context = null;
      const why = err instanceof Error ? err.message : String(err);
      process.stderr.write(`Warning: Ignoring extra certs from \`${deferred.file}\`, load failed: ${why}\n`);
    }
  }
  return (deferred.context as SecureContext | null) ?? undefined;
}

/** Adds the deferred certificates to a connection that names no trust of its own. */
class ExtraCaAgent extends https.Agent {
  override createConnection(options: RequestOptions & { secureContext?: SecureContext }, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    if (options.ca === undefined && options.secureContext === undefined) {
      const secureContext = extraCaContext();
      if (secureContext) options = { ...options, secureContext };
    }
    return super.createConnection(options, callback);
  }
}

/**
 * When a file was deferred: https.globalAgent (same options as Node's) trusts its certificates
 * too. Once per process; nothing otherwise.
 */
export function trustDeferredExtraCaInHttps(): void {
  if (!deferredExtraCa() || https.globalAgent instanceof ExtraCaAgent) return;
  https.globalAgent = new ExtraCaAgent({ ...https.globalAgent.options });
}
