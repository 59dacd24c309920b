/** Builds a Config from plain objects, for tests that don't need a Lua file. */
import type { Config, ConfigSection } from "../../src/core/config/index.js";
import type { OptionValue } from "../../src/core/types.js";

export function makeConfig(
  global: Record<string, OptionValue>,
  hosts: Record<string, Record<string, OptionValue>> = {},
  components: Record<string, Record<string, OptionValue>> = {},
): Config {
  const sections = new Map<string, ConfigSection>();
  sections.set("*", { name: "*", kind: "global", options: global, file: "test" });
  for (const [name, options] of Object.entries(hosts)) sections.set(name, { name, kind: "VirtualHost", options, file: "test" });
  for (const [name, options] of Object.entries(components)) sections.set(name, { name, kind: "Component", options, file: "test" });
  return {
    file: null,
    source: "embedded",
    sections,
    warnings: [],
    files: [],
    get(host, name) {
      const own = sections.get(host)?.options[name];
      return own !== undefined ? own : sections.get("*")!.options[name];
    },
    getRaw(host, name) {
      return sections.get(host)?.options[name];
    },
    hosts() {
      return [...sections.keys()].filter((h) => h !== "*");
    },
    isEnabled(host) {
      return sections.get(host)?.options.enabled !== false;
    },
  };
}
