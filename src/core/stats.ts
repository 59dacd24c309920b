/**
 * The runtime's statistics bus: the core (HTTP answers, storage commits) and plugins report
 * observations here, and whoever exports metrics (mod_http_openmetrics) listens. Nobody listening
 * is the default: then an observation costs one check and goes nowhere, so the core reports
 * without knowing whether metrics are enabled and without importing the module that exports them.
 *
 * Two kinds of figures:
 * - observations (`observe(name, value, labels)`): events as they happen, e.g. one HTTP answer
 *   and its duration; a listener turns them into counters and histograms;
 * - gauges (`gauge(name, labels, read)`): a value read when metrics are collected (a journal's
 *   size), so nothing runs between two collections.
 */
import type { StatsBus, StatsGauge, StatsLabels, StatsListener } from "./types.js";

interface GaugeEntry {
  name: string;
  labels: StatsLabels;
  /** Registrations of the same name + labels: the newest is read; each remover drops its own. */
  readers: Array<() => number | undefined>;
}

export class Stats implements StatsBus {
  private readonly listeners = new Set<StatsListener>();
  private readonly gauges = new Map<string, GaugeEntry>();

  /** Whether anyone listens (a reporter may skip measuring when nobody does). */
  get active(): boolean {
    return this.listeners.size > 0;
  }

  observe(name: string, value: number, labels: StatsLabels = {}): void {
    if (this.listeners.size === 0) return;
    for (const fn of this.listeners) {
      try {
        fn(name, value, labels);
      } catch {
        // A failing exporter must never break the request or commit that reported.
      }
    }
  }

  listen(fn: StatsListener): () => void {
    if (typeof fn !== "function") throw new TypeError("stats.listen: expected a function");
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  }

  gauge(name: string, labels: StatsLabels, read: () => number | undefined): () => void {
    if (typeof name !== "string" || name === "") throw new TypeError("stats.gauge: name must be a non-empty string");
    if (typeof read !== "function") throw new TypeError("stats.gauge: read must be a function");
    const key = `${name}\0${JSON.stringify(Object.entries(labels).sort())}`;
    let entry = this.gauges.get(key);
    if (!entry) this.gauges.set(key, (entry = { name, labels: { ...labels }, readers: [] }));
    const readers = entry.readers;
    readers.push(read);
    return () => {
      const i = readers.lastIndexOf(read);
      if (i >= 0) readers.splice(i, 1);
      if (readers.length === 0 && this.gauges.get(key) === entry) this.gauges.delete(key);
    };
  }

  readGauges(): StatsGauge[] {
    const out: StatsGauge[] = [];
    for (const g of this.gauges.values()) {
      let value: number | undefined;
      try {
        value = g.readers[g.readers.length - 1]?.();
      } catch {
        value = undefined;
      }
      if (typeof value === "number" && Number.isFinite(value)) out.push({ name: g.name, labels: { ...g.labels }, value });
    }
    return out;
  }
}
