/** Writes plain-JavaScript plugins into a temporary plugin_paths folder. */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function pluginDir(plugins: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "prosody-ts-plugins-"));
  for (const [name, source] of Object.entries(plugins)) {
    mkdirSync(join(dir, `mod_${name}`), { recursive: true });
    writeFileSync(join(dir, `mod_${name}`, `mod_${name}.js`), source);
  }
  return dir;
}
