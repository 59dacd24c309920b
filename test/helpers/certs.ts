/** Self-signed certificates made with the openssl CLI for TLS tests (no network, no fixtures). */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";

/** Why certificates cannot be made here, or undefined when they can. */
export function opensslMissing(): string | undefined {
  return spawnSync("openssl", ["version"]).status === 0 ? undefined : "openssl CLI not found (apt install openssl)";
}

export interface CertSpec {
  /** Subject CN. */
  cn: string;
  /** subjectAltName DNS names (none: CN only). */
  dns?: string[];
  /** subjectAltName IP addresses. */
  ip?: string[];
  /** Validity in days; -1 makes a certificate that expired a day ago. */
  days?: number;
}

/** Writes a certificate and its unencrypted key to the given paths; returns the certificate PEM. */
export function makeCert(certPath: string, keyPath: string, spec: CertSpec): string {
  mkdirSync(dirname(certPath), { recursive: true });
  mkdirSync(dirname(keyPath), { recursive: true });
  const args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyPath, "-out", certPath];
  args.push("-days", String(Math.max(spec.days ?? 30, 1)), "-subj", `/CN=${spec.cn}`);
  const alt = [...(spec.dns ?? []).map((d) => `DNS:${d}`), ...(spec.ip ?? []).map((a) => `IP:${a}`)];
  if (alt.length) args.push("-addext", `subjectAltName=${alt.join(",")}`);
  execFileSync("openssl", args, { stdio: "ignore" });
  if ((spec.days ?? 30) < 0) {
    // `req -x509` refuses negative days; re-sign the same request so that it ended yesterday.
    const csr = execFileSync("openssl", ["x509", "-x509toreq", "-in", certPath, "-signkey", keyPath]);
    execFileSync("openssl", ["x509", "-req", "-signkey", keyPath, "-days", "-1", "-out", certPath], { input: csr, stdio: ["pipe", "ignore", "ignore"] });
  }
  return readFileSync(certPath, "utf8");
}
