/**
 * mod_http_openmetrics: `GET /metrics` in the OpenMetrics text format, as Prosody 0.12's core
 * module of that name serves it: a global module (one endpoint per process, on the global HTTP
 * paths), content type "application/openmetrics-text; version=0.0.4", readable from the addresses
 * in `openmetrics_allow_ips` (default "::1" and "127.0.0.1") or inside `openmetrics_allow_cidr`,
 * 403 for anyone else; 404 "No statistics provider configured" unless statistics are enabled as
 * Prosody needs them (`statistics = "internal"`, or `statistics_interval` set).
 *
 * The figures are ours, not Prosody's (which has no invite metrics): invites created / used /
 * expired per host, type and source bucket; HTTP answers by route and status and their latency;
 * SQL storage commit latency and the SQLite journal's size (collectors.ts).
 */
import type { HttpEvent, Module } from "prosody-ts";
import { isPermitted, parseCidr, type AccessRule } from "./access.js";
import { createCollectors, type InviteLike } from "./collectors.js";

/** Prosody's exact header, kept for scrapers configured against it. */
export const CONTENT_TYPE = "application/openmetrics-text; version=0.0.4";

/** Prosody's statsmanager: a provider exists when `statistics` is "internal", or is unset and `statistics_interval` is set. */
function statisticsEnabled(module: Module): boolean {
  const provider = module.getOption("statistics");
  if (provider !== undefined) return provider === "internal";
  const interval = module.getOption("statistics_interval");
  return interval === "manual" || (typeof interval === "number" && interval >= 0) || (typeof interval === "string" && Number.isFinite(Number(interval)));
}

export default async function (module: Module): Promise<void> {
  module.setGlobal();
  await module.depends("http");

  const allowIps = new Set([...(module.getOptionSet("openmetrics_allow_ips", ["::1", "127.0.0.1"]) ?? [])].map(String));
  const cidrText = module.getOptionString("openmetrics_allow_cidr");
  const rule: AccessRule = { ips: allowIps, cidr: cidrText ? parseCidr(cidrText) : undefined };
  const enabled = statisticsEnabled(module);
  if (!enabled) module.log("info", "Statistics are disabled (set statistics = \"internal\"): /metrics answers 404");

  const collectors = enabled ? createCollectors(module.server.stats) : undefined;
  module.onUnload(() => collectors?.close());

  if (collectors) {
    // Each host this global module is enabled on reports its invites.
    module.addHost = (host: Module) => {
      const count = (kind: "created" | "used" | "expired") => (event: InviteLike | { invite?: InviteLike }) => {
        const invite = event && "invite" in event && event.invite ? event.invite : (event as InviteLike);
        if (invite && typeof invite === "object") collectors.invite(kind, host.host, invite);
        return undefined;
      };
      host.hook("invite-stored", count("created"));
      host.hook("invite-used", count("used"));
      host.hook("invite-expired", count("expired"));
    };
  }

  async function getMetrics(event: HttpEvent) {
    const { request, response } = event;
    if (!isPermitted(rule, request.ip)) return 403;
    if (!collectors) {
      response.headers.content_type = "text/plain; charset=utf-8";
      return { status_code: 404, body: "No statistics provider configured\n" };
    }
    response.headers.content_type = CONTENT_TYPE;
    return collectors.registry.metrics();
  }

  module.provides("http", {
    default_path: "metrics",
    route: { GET: getMetrics },
    headers: { cache_control: "no-store" },
  });
}
