/**
 * mod_http's https service (Prosody's "https" net provider): `https_ports` (default 5281) on
 * `https_interfaces` (else `interfaces`, else every IPv4 and IPv6 address, as Prosody), one TLS
 * context for the port and one per host that has a certificate of its own, chosen by SNI
 * (`http_host` or the host name). Certificates are found as Prosody finds them (certs.ts,
 * tls-contexts.ts) and found again on the global event `config-reloaded`: new connections get
 * the new ones, open connections keep theirs, and https not started for want of a certificate
 * starts then. Ports and interfaces are read once, at start (as Prosody's portmanager).
 *
 * Deliberate differences: with no usable certificate at all (none for the port, none for any
 * host), the https ports are not opened and one warning says why; Prosody listens anyway and
 * fails every handshake, while its URLs say https. An SNI name that is none of our hosts gets
 * the port's certificate; Prosody refuses the handshake. Settings are those of the first port.
 */
import type { Module } from "../core/types.js";
import type { HttpServer } from "../http/server.js";
import type { ListenResult, SecureListen } from "../http/types.js";
import type { SecureContext } from "node:tls";
import { certificatesDir, type CertConfig, type CertLog } from "./certs.js";
import { portList, strings } from "./http-config.js";
import { contextProblem, HttpsTls, type BuiltContext } from "./tls-contexts.js";

const DEFAULT_HTTPS_PORTS = [5281];

export type OpenService = (ports: number[], interfaces: string[], secure: SecureListen) => Promise<ListenResult[]>;

/**
 * `https_interfaces` (or the older `https_interface`), else `interfaces` (`interface`), else "*"
 * and "::" unless `use_ipv4` / `use_ipv6` is false: https is not a private service.
 */
export function httpsInterfaceList(module: Module): string[] {
  const defaults = [
    ...(module.getOption("use_ipv4") === false ? [] : ["*"]),
    ...(module.getOption("use_ipv6") === false ? [] : ["::"]),
  ];
  for (const name of ["https_interfaces", "https_interface", "interfaces", "interface"]) {
    const list = module.getOptionArray(name);
    if (list) return strings(list);
  }
  return defaults;
}

/** The running config as certificate lookup reads it (a module's view: the current options). */
export function moduleCertConfig(module: Module): CertConfig {
  return {
    get: (host, name) => module.context(host).getOption(name),
    hosts: () => module.server.hostNames(),
  };
}

interface Contexts {
  port?: BuiltContext;
  hosts: Map<string, SecureContext>;
  /** Why there is nothing to serve, when nothing is. */
  problem?: string;
  /** Why the port's own certificate cannot be used, when it has one. */
  portProblem?: string;
}

export class HttpsService {
  private contexts: Contexts = { hosts: new Map() };
  private readonly log: CertLog;
  private open?: OpenService;
  listening: ListenResult[] = [];

  constructor(
    private readonly module: Module,
    private readonly server: HttpServer,
  ) {
    this.log = (level, message) => module.log(level, "%s", message);
  }

  /** Opens the https ports through `open` (mod_http's shared listen path) if a certificate is usable. */
  async start(config: CertConfig, open: OpenService): Promise<void> {
    this.open = open;
    const ports = portList(this.module, "https_ports", DEFAULT_HTTPS_PORTS);
    const interfaces = httpsInterfaceList(this.module);
    if (ports.length === 0 || interfaces.length === 0) return;
    this.contexts = this.build(config, ports[0]!);
    if (!this.contexts.port && this.contexts.hosts.size === 0) {
      this.log("warn", `HTTPS not started: ${this.contexts.problem}`);
      return;
    }
    if (this.contexts.portProblem) this.log("error", this.contexts.portProblem);
    else if (!this.contexts.port) {
      this.log("info", `No certificate present in SSL/TLS configuration for https port ${ports[0]}. SNI will be required.`);
    }
    const secure: SecureListen = {
      options: this.contexts.port?.options ?? {},
      sni: (name) => this.contexts.hosts.get(name),
    };
    this.listening = await open(ports, interfaces, secure);
  }

  /**
   * config-reloaded: certificates found again from the new config, for new connections. If https
   * was not started for want of a certificate, it starts now when one is there.
   */
  async reload(config: CertConfig): Promise<void> {
    const port = this.listening[0]?.port;
    if (port === undefined) {
      if (this.open) await this.start(config, this.open);
      return;
    }
    const next = this.build(config, port);
    if (next.port) this.server.setSecureOptions(next.port.options);
    else if (this.contexts.port) {
      this.log("error", `Error reloading certificate for encrypted port for https: ${next.problem}`);
      next.port = this.contexts.port;
    }
    this.contexts = next;
  }

  private build(config: CertConfig, port: number): Contexts {
    const tls = new HttpsTls(config, this.module.server.paths.config, this.log);
    const portSettings = tls.portSettings(port);
    const portContext = contextProblem(portSettings, `https port ${port}`);
    const out: Contexts = { hosts: new Map() };
    let hostProblem: string | undefined;
    for (const host of config.hosts()) {
      if (config.get(host, "enabled") === false) continue;
      const settings = tls.hostSettings(host, portSettings);
      if (!settings.certificate || (settings.certificate === portSettings.certificate && settings.key === portSettings.key)) continue;
      const built = contextProblem(settings, host);
      if (typeof built === "string") {
        this.log("error", `Error creating TLS context for SNI host ${host}: ${built}`);
        hostProblem ??= built;
      } else out.hosts.set(tls.sniName(host), built.context);
    }
    if (typeof portContext !== "string") out.port = portContext;
    else if (portSettings.certificate) out.problem = out.portProblem = portContext;
    else {
      const dir = certificatesDir(config, this.module.server.paths.config);
      out.problem = hostProblem ?? `no certificate found for https port ${port} or any host (looked in ${dir}; see https_certificate, https_ssl, certificates)`;
    }
    return out;
  }
}
