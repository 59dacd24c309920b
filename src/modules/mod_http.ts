/**
 * mod_http: the process-wide HTTP service (Prosody's modules/mod_http.lua behaviour, spec §3).
 *
 * A global module with `addHost`: one HttpServer per process, listening on `http_ports` ×
 * `http_interfaces` and, when a certificate is found, on `https_ports` × `https_interfaces`
 * (https-service.ts; server processes only). Both feed the same routes and limits. Every host it is attached to registers its HTTP
 * host key (`http_host` or the host name) and serves the `http-provider` items of that host;
 * the global context serves items of global modules without a host part. Also provides the
 * `module.httpUrl()` backend through the shared table "/*\/http/url".
 *
 * Limits (global options): `http_max_content_size` (bytes, default 10 MiB, caps every route),
 * `http_header_timeout` (s, default 10), `http_request_timeout` (s, head and body, default 30),
 * `http_keepalive_timeout` (s, default 15), `http_max_connections_per_ip` (default 64, 0 = none;
 * peers in `trusted_proxies` are not capped). Prosody has none of the last four (only its
 * 14-minute `network_settings.read_timeout`); the names are ours. An app declares its routes'
 * body limits with `max_content_size` and headers for all its answers with `headers`.
 *
 * This file is the module's lifetime (server, listening, hosts attached, shutdown); how an app
 * becomes routes is http-apps.ts, the reading of options http-config.ts.
 */
import type { ItemEvent, Module } from "../core/types.js";
import { HttpServer } from "../http/server.js";
import type { HttpApp, ListenResult, SecureListen } from "../http/types.js";
import type { CertConfig } from "./certs.js";
import { appRegistrar } from "./http-apps.js";
import { basePath, externalUrl, interfaceList, portList, serverOptions } from "./http-config.js";
import { HttpsService, moduleCertConfig } from "./https-service.js";

export type { HttpApp, HttpCorsConfig } from "../http/types.js";

interface SharedServer {
  server?: HttpServer;
  listening?: ListenResult[];
  /** The https ports (empty when https is not served). */
  secure?: ListenResult[];
}

interface SharedUrl {
  url?: (app: string, defaultPath: string | undefined, host: string) => string;
}

const DISABLED_URL = "http://disabled.invalid/";

export default async function modHttp(module: Module): Promise<void> {
  module.setGlobal();
  const isServer = module.server.processType === "server";

  const state = module.shared<SharedServer>("/*/http/server");
  const server = new HttpServer(serverOptions(module));
  state.server = server;
  state.listening = [];
  state.secure = [];
  const https = new HttpsService(module, server);

  /**
   * Opens one service's ports: the one place where http and https listen failures are handled. At
   * start a port that cannot be bound throws a StartupError, so the start stops with that line.
   * Later (https opened on a config reload once a certificate appeared) it is logged instead: a
   * reload never stops a running server.
   */
  let startedListening = false;
  const openService = async (name: "HTTP" | "HTTPS", ports: number[], interfaces: string[], secure?: SecureListen): Promise<ListenResult[]> => {
    if (ports.length === 0 || interfaces.length === 0) return [];
    try {
      const bound = await server.listen(ports, interfaces, secure);
      for (const l of bound) module.log("debug", "%s listening on %s port %s", name, l.address, l.port);
      return bound;
    } catch (err) {
      if (!startedListening) throw err;
      module.log("error", "Failed to open %s: %s", name, err instanceof Error ? err.message : err);
      return [];
    }
  };

  if (isServer) {
    // Listen now (a busy port shows at once), answer once every host's modules are loaded: a request
    // in between would meet missing routes (404) that are about to exist.
    if (module.server.startingUp) {
      server.holdRequests(new Promise<void>((started) => module.hookGlobal("server-started", () => void started())));
    }
    state.listening = await openService("HTTP", portList(module), interfaceList(module));
    await https.start(moduleCertConfig(module), (ports, interfaces, secure) => openService("HTTPS", ports, interfaces, secure));
    state.secure = https.listening;
    startedListening = true;
    // As Prosody's certmanager and portmanager: certificates are looked up again on reload.
    module.hookGlobal<{ config?: CertConfig }>("config-reloaded", (event) => {
      void https.reload(event?.config ?? moduleCertConfig(module)).then(() => (state.secure = https.listening));
      return undefined;
    });
  }

  // --- module.httpUrl() backend (spec §3.8) ---

  const httpUrl = (app: string, defaultPath: string | undefined, host: string): string => {
    const ctx = host === "*" ? module : module.context(host);
    const base = basePath(ctx, app, defaultPath);
    const external = ctx.getOptionString("http_external_url");
    if (external) return externalUrl(external, base);
    // mod_http's rule: the https service when it is served, else http.
    const first = state.secure?.[0] ?? state.listening?.[0];
    if (!first) return DISABLED_URL;
    const scheme = first.secure ? "https" : "http";
    let name = host === "*" ? module.getOptionString("http_default_host") : ctx.getOptionString("http_host");
    if (!name) name = host === "*" ? first.address : host;
    if (name.includes(":") && !name.startsWith("[")) name = `[${name}]`;
    const port = first.port === (first.secure ? 443 : 80) ? "" : `:${first.port}`;
    return `${scheme}://${name}${port}${base}`;
  };
  const urlRegistry = module.shared<SharedUrl>("/*/http/url");
  urlRegistry.url = httpUrl;

  // --- serving apps ---

  const registerApp = appRegistrar(module, server, httpUrl);
  const detachers = new Set<() => void>();

  /** Serves the http-provider items of one context: a host wrapper, or the global module. */
  const attach = (ctx: Module): (() => void) => {
    const isGlobal = ctx.host === "*";
    const httpHost = isGlobal ? null : (ctx.getOptionString("http_host") ?? ctx.host);
    const removeHost = httpHost === null ? () => undefined : server.addHost(httpHost);
    const apps = new Map<unknown, Array<() => void>>();

    const added = (event: ItemEvent<HttpApp>) => {
      // In prosodyctl every host shares one bus: only take items of this context's host.
      if (event.source && event.source.host !== ctx.host) return;
      if (apps.has(event.item)) return;
      apps.set(event.item, registerApp(ctx, httpHost, event.item));
    };
    const removed = (event: ItemEvent<HttpApp>) => {
      const removers = apps.get(event.item);
      if (!removers) return;
      apps.delete(event.item);
      for (const remove of removers) remove();
    };
    ctx.handleItems<HttpApp>("http-provider", added, removed);

    const detach = () => {
      for (const removers of apps.values()) for (const remove of removers) remove();
      apps.clear();
      removeHost();
      detachers.delete(detach);
    };
    detachers.add(detach);
    return detach;
  };

  // Global apps (provided by global modules) are served without a host part.
  attach(module);

  module.addHost = (hostModule: Module) => {
    const detach = attach(hostModule);
    hostModule.unload = () => detach();
    return undefined;
  };

  let closing: Promise<void> | undefined;
  const shutdown = () => (closing ??= server.close());

  module.hookGlobal("server-stopping", () => {
    void shutdown();
    return undefined;
  });

  module.onUnload(async () => {
    for (const detach of [...detachers]) detach();
    if (urlRegistry.url === httpUrl) delete urlRegistry.url;
    await shutdown();
    if (state.server === server) {
      delete state.server;
      state.listening = [];
      state.secure = [];
    }
  });
}
