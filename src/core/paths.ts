/** Where this package lives and where its bundled plugins are, from source (tsx) or from dist/. */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** True when this code runs from TypeScript sources (tsx), so .ts plugins can be imported. */
export const RUNNING_FROM_SOURCE = import.meta.url.endsWith(".ts");

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, "utf8")).name === "prosody-ts") return dir;
      } catch {
        // not ours; keep climbing
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error("prosody-ts: cannot find the package root above " + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export const PACKAGE_ROOT = findPackageRoot();

/** Bundled plugins: TypeScript sources when running under tsx, the built copies otherwise. */
export const BUNDLED_PLUGINS_DIR = RUNNING_FROM_SOURCE ? join(PACKAGE_ROOT, "plugins") : join(PACKAGE_ROOT, "dist", "plugins");
