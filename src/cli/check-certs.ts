/**
 * `prosodyctl check certs`: for every enabled host, the certificate Prosody 0.12 would use for it
 * (found as its certmanager finds it, with the host's `ssl`, else its parent domain's, over the
 * global `ssl`), whether it can be loaded, when it expires and whether it names the host. The
 * lines are Prosody's own wording, so scripts that read its output read ours.
 *
 * Differences: hosts are checked in config order (Prosody: table order). A certificate or key
 * that cannot be loaded is reported as `Error: error loading certificate|private key (<reason>)`
 * with the system's reason where LuaSec often says `(null)`. Names are matched against DNS
 * subjectAltNames (or the CN when there are none), as for any TLS client; XMPP-specific names
 * (xmppAddr, SRVName) are not read, so a certificate carrying only those is reported as not valid.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Config } from "../core/config/index.js";
import { findHostCert, indexCerts, certificatesDir, resolvePath, validAt } from "../modules/certs.js";
import { applySsl, contextProblem, type TlsSettings } from "../modules/tls-contexts.js";

const DAY_MS = 86_400_000;

/** Prints the certificate section of `prosodyctl check`; resolves with the number of problems found. */
export async function checkCertificates(config: Config, io: { out(line: string): void }): Promise<number> {
  const configDir = config.file ? dirname(resolve(config.file)) : process.cwd();
  const index = indexCerts(certificatesDir(config, configDir));
  let problems = 0;
  const problem = (line: string) => {
    io.out(line);
    problems++;
  };
  io.out("Checking certificates...");
  for (const host of config.hosts()) {
    if (!config.isEnabled(host) || host.includes("@")) continue;
    io.out(`Checking certificate for ${host}`);
    const parent = /\.(.*)$/.exec(host)?.[1];
    const hostSsl = config.getRaw(host, "ssl") ?? (parent ? config.getRaw(parent, "ssl") : undefined);
    const settings: TlsSettings = applySsl({}, findHostCert(config, configDir, index, host));
    applySsl(settings, config.getRaw("*", "ssl"));
    applySsl(settings, hostSsl);
    if (settings.certificate) settings.certificate = resolvePath(configDir, settings.certificate);
    if (settings.key) settings.key = resolvePath(configDir, settings.key);
    if (!settings.certificate) {
      problem(`  No 'certificate' found for ${host}`);
      continue;
    }
    if (!settings.key) {
      problem(`  Error: No key present in SSL/TLS configuration for ${host}`);
      continue;
    }
    const loaded = load(settings);
    if (typeof loaded === "string") {
      problem(`  Error: ${loaded}`);
      continue;
    }
    io.out(`  Certificate: ${settings.certificate}`);
    const now = Date.now();
    if (!validAt(loaded, now)) problem("    Certificate has expired.");
    else if (!validAt(loaded, now + DAY_MS)) problem("    Certificate expires within one day.");
    else if (!validAt(loaded, now + 7 * DAY_MS)) io.out("    Certificate expires within one week.");
    else if (!validAt(loaded, now + 31 * DAY_MS)) io.out("    Certificate expires within one month.");
    // The same name check stands for both XMPP services (see the header).
    const named = loaded.checkHost(host) !== undefined;
    if (config.get(host, "component_module") === undefined && !named) problem(`    Not valid for client connections to ${host}.`);
    const anonymous = config.get(host, "anonymous_login") || config.get(host, "authentication") === "anonymous";
    if (!anonymous && !named) problem(`    Not valid for server-to-server connections to ${host}.`);
  }
  if (problems > 0) {
    io.out("");
    io.out("For more information about certificates please see https://prosody.im/doc/certificates");
  }
  io.out("");
  return problems;
}

/** The certificate, or LuaSec's style of message when it or its key cannot be used. */
function load(settings: TlsSettings): X509Certificate | string {
  for (const [file, what] of [
    [settings.key!, "private key"],
    [settings.certificate!, "certificate"],
  ] as const) {
    try {
      readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return `error loading ${what} (${code === "EACCES" ? "Permission denied" : code === "ENOENT" ? "No such file or directory" : (err as Error).message})`;
    }
  }
  const built = contextProblem(settings, "check");
  if (typeof built === "string") {
    if (built.includes(`'${settings.key}'`)) return "error loading private key (no start line)";
    if (built.includes(`'${settings.certificate}'`)) return "error loading certificate (no start line)";
    return built.replace(/^SSL\/TLS: Error initialising for check: /, "");
  }
  return new X509Certificate(readFileSync(settings.certificate!));
}
