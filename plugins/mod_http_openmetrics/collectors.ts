/**
 * The metrics this host exports, on a prom-client registry: what the core reports on the
 * statistics bus (HTTP answers, storage commits, the SQLite journal's size) and the invite events
 * of each host. Label values are bounded: an invite's `source` is reduced to a few buckets, HTTP
 * routes are the registered route keys (never the requested path), hosts are the configured ones.
 */
import { Counter, Gauge, Histogram, Registry, type OpenMetricsContentType } from "prom-client";
import type { StatsBus, StatsLabels } from "prosody-ts";

/** Seconds: from a fast in-memory answer to a slow fsync or a stuck lock. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Buckets of an invite's `additional_data.source` (e.g. "api/token/ID" → "api"). */
export const SOURCE_BUCKETS = ["api", "adhoc", "admin_api", "cli", "other"] as const;

export type InviteEventKind = "created" | "used" | "expired";

/** What an invite event carries that the labels need (an Invite or a validated invite). */
export interface InviteLike {
  type?: unknown;
  reusable?: unknown;
  additional_data?: Record<string, unknown>;
}

/** The bucket of a source string: the part before the first "/", if it is a known one. */
export function sourceBucket(source: unknown): (typeof SOURCE_BUCKETS)[number] {
  if (typeof source !== "string") return "other";
  const head = source.split("/", 1)[0]!;
  return (SOURCE_BUCKETS as readonly string[]).includes(head) ? (head as (typeof SOURCE_BUCKETS)[number]) : "other";
}

/** Snikket's admin API kinds: account, reset, group (reusable), contact (roster). */
export function inviteKind(invite: InviteLike): "account" | "reset" | "group" | "contact" {
  if (invite.type === "roster") return "contact";
  if (invite.additional_data && typeof invite.additional_data.allow_reset === "string") return "reset";
  if (invite.reusable === true) return "group";
  return "account";
}

export interface Collectors {
  registry: Registry<OpenMetricsContentType>;
  invite(kind: InviteEventKind, host: string, invite: InviteLike): void;
  /** Stops listening to the statistics bus. */
  close(): void;
}

export function createCollectors(stats: StatsBus): Collectors {
  const registry = new Registry<OpenMetricsContentType>();
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  const invites = {
    created: new Counter({ name: "prosody_invites_created", help: "Invites created", labelNames: ["host", "type", "source"], registers: [registry] }),
    used: new Counter({ name: "prosody_invites_used", help: "Invites used to register or reset an account", labelNames: ["host", "type", "source"], registers: [registry] }),
    expired: new Counter({ name: "prosody_invites_expired", help: "Expired invites purged", labelNames: ["host", "type", "source"], registers: [registry] }),
  };
  const httpRequests = new Counter({ name: "prosody_http_requests", help: "HTTP answers by route and status", labelNames: ["route", "status"], registers: [registry] });
  const httpSeconds = new Histogram({
    name: "prosody_http_request_duration_seconds",
    help: "Time from a complete request to its answer",
    labelNames: ["route"],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const commitSeconds = new Histogram({
    name: "prosody_storage_commit_duration_seconds",
    help: "Time of one SQL storage write until durable",
    labelNames: ["driver", "ok"],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: "prosody_storage_journal_bytes",
    help: "Size of the SQLite journal not yet folded into the database file",
    labelNames: ["database"],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of stats.readGauges()) if (g.name === "storage_journal_bytes") this.set({ database: g.labels.database ?? "" }, g.value);
    },
  });

  const onObservation = (name: string, value: number, labels: StatsLabels) => {
    if (name === "http_request") {
      const route = labels.route ?? "none";
      httpRequests.inc({ route, status: labels.status ?? "" });
      httpSeconds.observe({ route }, value);
    } else if (name === "storage_commit") {
      commitSeconds.observe({ driver: labels.driver ?? "", ok: labels.ok ?? "" }, value);
    }
  };
  const unlisten = stats.listen(onObservation);

  return {
    registry,
    invite(kind, host, invite) {
      invites[kind].inc({ host, type: inviteKind(invite), source: sourceBucket(invite.additional_data?.source) });
    },
    close() {
      unlisten();
      registry.clear();
    },
  };
}
