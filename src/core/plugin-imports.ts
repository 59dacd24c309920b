/**
 * Plugins outside this package (a `plugin_paths` folder, with or without its own package.json)
 * import the host as `"prosody-ts"` and `"prosody-ts/util"` without installing anything: before
 * the first such plugin loads, a resolve hook (plugin-imports-hooks.ts) is registered that maps
 * both names to this host's entry points. Bundled plugins need none (they resolve the package by
 * its own name), so a host that loads only those never registers it.
 */
import { existsSync } from "node:fs";
import { register } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PACKAGE_ROOT, RUNNING_FROM_SOURCE } from "./paths.js";

/** Process-wide like the loader it configures: registered once. */
let registered = false;

/** The entry points a plugin's `import "prosody-ts…"` gets, as URLs. */
export function hostEntryPoints(): Record<string, string> {
  const url = (path: string) => pathToFileURL(join(PACKAGE_ROOT, path)).href;
  return RUNNING_FROM_SOURCE
    ? { "prosody-ts": url("src/index.ts"), "prosody-ts/util": url("src/util/index.ts") }
    : { "prosody-ts": url("dist/index.js"), "prosody-ts/util": url("dist/util.js") };
}

/** The hooks file beside this module's bundle (dist/), or the TypeScript source when run from src/. */
function hooksFile(): string | undefined {
  for (const name of ["./plugin-imports-hooks.js", "./plugin-imports-hooks.ts"]) {
    const file = fileURLToPath(new URL(name, import.meta.url));
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** Lets plugins outside this package import "prosody-ts" and "prosody-ts/util" (idempotent). */
export function letPluginsImportHost(): void {
  if (registered) return;
  registered = true;
  const hooks = hooksFile();
  // Without it (an incomplete build) such an import fails with Node's "Cannot find package".
  if (hooks) register(pathToFileURL(hooks).href, { data: { targets: hostEntryPoints() } });
}
