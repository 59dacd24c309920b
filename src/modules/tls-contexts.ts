/**
 * TLS settings and contexts of the https service, merged as Prosody 0.12's portmanager and
 * certmanager merge them (facts from their behaviour; our own code), and the messages Prosody
 * logs when a certificate or key cannot be used.
 *
 * Port (the context for clients without SNI, or naming no host of ours), lowest first: the
 * service certificate (certs.ts), global `ssl`, `ssl[port]`, `https_ssl` (else `ssl`),
 * `https_ssl[port]`. Host (SNI `http_host` or the host name): the host's certificate, global
 * `ssl`, the port's settings, the certificate found for `http_host` or the host, the host's
 * `https_ssl`. So a host without a certificate of its own is served the port's one.
 *
 * Keys honoured in those tables: `certificate`, `key` (paths, relative to the config file's
 * directory), `password` (of an encrypted key), `ciphers` (a string or a list). Other LuaSec
 * keys (`protocol`, `options`, `dhparam`, …) are ignored: Node's defaults with TLS 1.2 as the
 * minimum stand for Prosody's default "intermediate" profile.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext, type SecureContext, type SecureContextOptions } from "node:tls";
import type { OptionValue } from "../core/types.js";
import { certificatesDir, findHostCert, findServiceCert, indexCerts, resolvePath, type CertConfig, type CertIndex, type CertLog } from "./certs.js";

export interface TlsSettings {
  certificate?: string;
  key?: string;
  password?: string;
  ciphers?: string;
}

export interface BuiltContext {
  settings: TlsSettings;
  options: SecureContextOptions;
  context: SecureContext;
}

/** Applies one ssl-style table over `into` (later calls win), as util.sslconfig's apply does. */
export function applySsl(into: TlsSettings, table: OptionValue | TlsSettings | undefined): TlsSettings {
  if (!table || typeof table !== "object" || Array.isArray(table)) return into;
  const t = table as Record<string, OptionValue>;
  for (const name of ["certificate", "key", "password"] as const) {
    if (typeof t[name] === "string") into[name] = t[name] as string;
  }
  const ciphers = t.ciphers;
  if (typeof ciphers === "string") into.ciphers = ciphers;
  else if (Array.isArray(ciphers)) into.ciphers = ciphers.filter((c) => typeof c === "string").join(":");
  return into;
}

/** One config's certificate index and the settings of the https port and of each host. */
export class HttpsTls {
  readonly index: CertIndex;

  constructor(
    readonly config: CertConfig,
    readonly configDir: string,
    private readonly log: CertLog,
  ) {
    this.index = indexCerts(certificatesDir(config, configDir), log);
  }

  portSettings(port: number): TlsSettings {
    const s = applySsl({}, findServiceCert(this.config, this.configDir, this.index, "https", port, this.log));
    const global = this.config.get("*", "ssl");
    const own = this.config.get("*", "https_ssl") ?? global;
    for (const table of [global, member(global, port), own, member(own, port)]) applySsl(s, table);
    return this.resolved(s);
  }

  hostSettings(host: string, port: TlsSettings): TlsSettings {
    const s = applySsl({}, findHostCert(this.config, this.configDir, this.index, host, this.log));
    applySsl(s, this.config.get("*", "ssl"));
    applySsl(s, port);
    const alternate = this.config.get(host, "http_host");
    applySsl(s, findHostCert(this.config, this.configDir, this.index, typeof alternate === "string" ? alternate : host, this.log));
    applySsl(s, this.config.get(host, "https_ssl"));
    return this.resolved(s);
  }

  /** The host name SNI selects a host by: its `http_host`, else the host name. */
  sniName(host: string): string {
    const alternate = this.config.get(host, "http_host");
    return (typeof alternate === "string" ? alternate : host).toLowerCase();
  }

  private resolved(s: TlsSettings): TlsSettings {
    if (s.certificate) s.certificate = resolvePath(this.configDir, s.certificate);
    if (s.key) s.key = resolvePath(this.configDir, s.key);
    return s;
  }
}

/** The built context, or the one line saying why there is none (for prosodyctl check certs too). */
export function contextProblem(settings: TlsSettings, forName: string): BuiltContext | string {
  if (!settings.certificate) return `No certificate present in SSL/TLS configuration for ${forName}.`;
  if (!settings.key) return `No key present in SSL/TLS configuration for ${forName}`;
  const cert = readPem(settings.certificate, forName);
  if (typeof cert === "string") return cert;
  const key = readPem(settings.key, forName);
  if (typeof key === "string") return key;
  try {
    new X509Certificate(cert);
  } catch {
    return failedToLoad(settings.certificate, "Check that the file contains a certificate", forName);
  }
  try {
    createPrivateKey({ key, passphrase: settings.password });
  } catch {
    // PKCS#8 "BEGIN ENCRYPTED PRIVATE KEY", or a traditional PEM key with "Proc-Type: 4,ENCRYPTED".
    if (settings.password === undefined && /-----BEGIN ENCRYPTED|ENCRYPTED\r?\n/.test(key.toString("latin1"))) {
      return `Encrypted certificate for ${forName} requires 'ssl' 'password' to be set in config`;
    }
    return failedToLoad(settings.key, "Check that the file contains a private key", forName);
  }
  const options: SecureContextOptions = { cert, key, passphrase: settings.password, minVersion: "TLSv1.2" };
  if (settings.ciphers) options.ciphers = settings.ciphers;
  try {
    return { settings, options, context: createSecureContext(options) };
  } catch (err) {
    return `SSL/TLS: Error initialising for ${forName}: ${(err as Error).message}`;
  }
}

// --- internal ---

function member(table: OptionValue | undefined, port: number): OptionValue | undefined {
  return table && typeof table === "object" && !Array.isArray(table) ? table[String(port)] : undefined;
}

function readPem(path: string, forName: string): Buffer | string {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === "EACCES" || code === "EPERM"
        ? "Check that the permissions allow Prosody to read this file."
        : code === "ENOENT"
          ? "Check that the path is correct, and the file exists."
          : `Reason: ${String((err as Error).message).toLowerCase()}`;
    return failedToLoad(path, reason, forName);
  }
}

function failedToLoad(path: string, reason: string, forName: string): string {
  return `SSL/TLS: Failed to load '${path}': ${reason} (for ${forName})`;
}
