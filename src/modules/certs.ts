/**
 * Finding certificates as Prosody 0.12's core/certmanager.lua does (our own code; facts only).
 *
 * - The `certificates` option (global; default "certs", relative to the config file's directory)
 *   names a directory that is indexed once (three levels deep): every `*.crt` or `*fullchain*`
 *   file that starts with a PEM certificate, is valid now and has its key beside it
 *   (`.crt` → `.key`, `fullchain` → `privkey`), under each name it carries (subjectAltName DNS
 *   names, wildcards as `*.domain`, and the subject CN).
 * - A host's certificate: the index under the host name or its wildcard, else in the host's
 *   `certificate` option (a file or a directory; default the certificates directory) one of
 *   `<host>.crt` + `<host>.key`, `<host>/fullchain.pem` + `<host>/privkey.pem`, `<host>.pem`
 *   (both in one file), else the same for the parent domain, and so on.
 * - A service's certificate (https port): any indexed certificate, else `<service>_certificate`
 *   (a path, or a table by port with `default`) searched as above under the service's name.
 *
 * Paths in the results are absolute. Nothing here throws for a missing or bad file: it is "not
 * found" (as lfs.attributes answers), and reading and checking happens in tls-contexts.ts.
 */
import { X509Certificate } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import type { OptionValue } from "../core/types.js";

/** What certificate lookup reads of a config: a Config, or a module's view of the running one. */
export interface CertConfig {
  /** Host value, else global value (unknown host → global value). */
  get(host: string, name: string): OptionValue | undefined;
  /** Every configured section except "*". */
  hosts(): string[];
}

export interface CertPair {
  certificate: string;
  key: string;
}

/** Indexed names (lower case) → certificate files carrying them, in directory order (sorted). */
export type CertIndex = Map<string, string[]>;

export type CertLog = (level: "debug" | "info" | "warn" | "error", message: string) => void;

/** Directory of `certificates` (global), resolved against the config file's directory. */
export function certificatesDir(config: CertConfig, configDir: string): string {
  const option = config.get("*", "certificates");
  return resolvePath(configDir, typeof option === "string" ? option : "certs");
}

/** Prosody's resolve_relative_path: absolute paths stay, others are taken under `base`. */
export function resolvePath(base: string, path: string): string {
  return isAbsolute(path) ? path : resolve(base, path);
}

/** The key file expected beside a certificate file (certmanager's find_matching_key). */
export function matchingKey(certPath: string): string {
  return certPath.replace(/\.crt$/, ".key").replaceAll("fullchain", "privkey");
}

/** Indexes a certificates directory (see the header); unreadable entries are skipped. */
export function indexCerts(dir: string, log: CertLog = () => undefined, index: CertIndex = new Map(), depth = 3): CertIndex {
  if (depth <= 0) return index;
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch (err) {
    // A missing directory is the usual case without certificates; whoever needed one says so.
    const level = (err as NodeJS.ErrnoException).code === "ENOENT" ? "debug" : "error";
    log(level, `Error indexing certificate directory ${dir}: ${(err as Error).message}`);
    return index;
  }
  for (const name of entries) {
    const full = join(dir, name);
    if (isKind(full, "directory")) {
      if (!name.startsWith(".")) indexCerts(full, log, index, depth - 1);
      continue;
    }
    if (!name.endsWith(".crt") && !name.includes("fullchain")) continue;
    const names = identitiesOf(full);
    if (!names || !isKind(matchingKey(full), "file")) continue;
    for (const n of names) {
      const files = index.get(n) ?? [];
      if (!files.includes(full)) files.push(full);
      index.set(n, files);
    }
  }
  return index;
}

/** The certificate for `host` (and its key), or undefined. */
export function findHostCert(config: CertConfig, configDir: string, index: CertIndex, host: string, log: CertLog = () => undefined): CertPair | undefined {
  for (let name: string | undefined = host; name; name = /\.(.+)$/.exec(name)?.[1]) {
    const wildcard = name.replace(/^[^.]+\./, "*.");
    const indexed = index.get(name.toLowerCase())?.[0] ?? index.get(wildcard.toLowerCase())?.[0];
    if (indexed) return { certificate: indexed, key: matchingKey(indexed) };
    const option = config.get(name, "certificate");
    const found = findCert(certificatesDirFor(config, configDir, option), name, log);
    if (found) return found;
  }
  return undefined;
}

/** The certificate of a direct-TLS service port (`https` on 5281…): see the header. */
export function findServiceCert(config: CertConfig, configDir: string, index: CertIndex, service: string, port: number, log: CertLog = () => undefined): CertPair | undefined {
  const first = index.values().next();
  if (!first.done && first.value[0]) return { certificate: first.value[0], key: matchingKey(first.value[0]) };
  let option = config.get("*", `${service}_certificate`);
  if (isRecord(option)) option = option[String(port)] ?? option.default;
  return findCert(certificatesDirFor(config, configDir, option), service, log);
}

// --- internal ---

function certificatesDirFor(config: CertConfig, configDir: string, option: OptionValue | undefined): string {
  return typeof option === "string" ? resolvePath(configDir, option) : certificatesDir(config, configDir);
}

/** certmanager's find_cert: `dir` itself if it is a file, else the usual names in it. */
function findCert(dir: string, name: string, log: CertLog): CertPair | undefined {
  log("debug", `Searching ${dir} for a key and certificate for ${name}...`);
  const tries: Array<[string, string]> = [
    ["", ""],
    [`/${name}.crt`, `/${name}.key`],
    [`/${name}/fullchain.pem`, `/${name}/privkey.pem`],
    [`/${name}.pem`, `/${name}.pem`],
  ];
  for (const [crt, key] of tries) {
    const certificate = dir + crt;
    let keyPath = dir + key;
    if (!isKind(certificate, "file")) continue;
    if (certificate === keyPath) {
      if (keyPath.endsWith(".crt")) keyPath = `${keyPath.slice(0, -3)}key`;
      else if (keyPath.endsWith("/fullchain.pem")) keyPath = `${keyPath.slice(0, -"fullchain.pem".length)}privkey.pem`;
    }
    if (isKind(keyPath, "file")) return { certificate, key: keyPath };
  }
  log("debug", `No certificate/key found for ${name}`);
  return undefined;
}

/** Names a PEM certificate file is valid for now, or undefined (not a certificate, expired). */
function identitiesOf(file: string): string[] | undefined {
  let cert: X509Certificate;
  try {
    const text = readFileSync(file, "utf8");
    if (!text.startsWith("-----BEGIN CERTIFICATE-----")) return undefined;
    cert = new X509Certificate(text);
  } catch {
    return undefined;
  }
  if (!validAt(cert, Date.now())) return undefined;
  return certNames(cert);
}

/** Whether `now` (ms) lies within the certificate's validity. */
export function validAt(cert: X509Certificate, now: number): boolean {
  return Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
}

/** DNS names of the subjectAltName (wildcards kept) and the subject CN, lower case. */
export function certNames(cert: X509Certificate): string[] {
  const names = new Set<string>();
  for (const part of (cert.subjectAltName ?? "").split(/,\s*/)) {
    if (part.startsWith("DNS:")) names.add(part.slice(4).toLowerCase());
  }
  for (const line of cert.subject.split("\n")) if (line.startsWith("CN=")) names.add(line.slice(3).toLowerCase());
  return [...names];
}

function isKind(path: string, kind: "file" | "directory"): boolean {
  try {
    const st = statSync(path);
    return kind === "file" ? st.isFile() : st.isDirectory();
  } catch {
    return false;
  }
}

function isRecord(value: unknown): value is Record<string, OptionValue> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
