/**
 * The Config object (lookups with Prosody's host → global fallback) and the embedded default
 * used when no config file is found.
 */
import { join } from "node:path";
import type { OptionValue } from "../types.js";
import type { PathDefaults } from "./system.js";
import type { Config, ConfigSection, ConfigSource } from "./types.js";

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

class LoadedConfig implements Config {
  pathDefaults?: PathDefaults;

  constructor(
    readonly file: string | null,
    readonly source: ConfigSource,
    readonly sections: Map<string, ConfigSection>,
    readonly warnings: string[],
    readonly files: readonly string[],
  ) {}

  getRaw(host: string, name: string): OptionValue | undefined {
    const section = this.sections.get(host);
    return section && hasOwn(section.options, name) ? section.options[name] : undefined;
  }

  get(host: string, name: string): OptionValue | undefined {
    return this.getRaw(host, name) ?? this.getRaw("*", name);
  }

  hosts(): string[] {
    return [...this.sections.keys()].filter((name) => name !== "*");
  }

  isEnabled(host: string): boolean {
    return this.get(host, "enabled") !== false;
  }
}

/** Wraps evaluated sections ("*" first) as a Config. */
export function createConfig(
  file: string | null, source: ConfigSource, sections: ConfigSection[], warnings: string[], files: readonly string[] = file ? [file] : [],
): Config {
  return new LoadedConfig(file, source, new Map(sections.map((s) => [s.name, s])), warnings, files);
}

/**
 * The config used when neither --config, PROSODY_CONFIG nor ./prosody.cfg.lua gives a file:
 * enough to try the invite suite locally. It is equivalent to this prosody.cfg.lua:
 *
 *     data_path = "<cwd>/data"
 *     http_ports = { 5280 }
 *     http_interfaces = { "127.0.0.1" }
 *     https_ports = { }   -- plain HTTP on loopback only: no certificate to look for, nothing public
 *     default_storage = "sql"
 *     storage = "sql"
 *     sql = { driver = "SQLite3", database = "prosody.sqlite" }
 *     modules_enabled = {
 *       "http", "invites", "invites_api", "invites_page", "register_apps",
 *       "invites_register_web", "invites_adhoc", "invites_register",
 *     }
 *     VirtualHost "localhost"
 *
 * @example embeddedDefaultConfig(process.cwd()).get("localhost", "storage") // "sql"
 */
export function embeddedDefaultConfig(cwd: string, source: "embedded" | "embedded-option" = "embedded"): Config {
  const globalOptions: Record<string, OptionValue> = {
    data_path: join(cwd, "data"),
    default_storage: "sql",
    http_interfaces: ["127.0.0.1"],
    http_ports: [5280],
    https_ports: [],
    modules_enabled: [
      "http", "invites", "invites_api", "invites_page", "register_apps",
      "invites_register_web", "invites_adhoc", "invites_register",
    ],
    sql: { database: "prosody.sqlite", driver: "SQLite3" },
    storage: "sql",
  };
  const file = "<embedded default config>";
  return createConfig(null, source, [
    { name: "*", kind: "global", options: globalOptions, file },
    { name: "localhost", kind: "VirtualHost", options: { defined: true }, file, line: 10 },
  ], []);
}
