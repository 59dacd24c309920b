import { readdirSync, existsSync } from "node:fs";
import { defineConfig } from "tsup";

// Each bundled plugin is its own entry, so the host finds it on disk at dist/plugins/mod_x/mod_x.js
// exactly as it finds a third-party plugin in a plugin_paths folder.
const plugins: Record<string, string> = {};
for (const dir of existsSync("plugins") ? readdirSync("plugins") : []) {
  const file = `plugins/${dir}/${dir}.ts`;
  if (dir.startsWith("mod_") && existsSync(file)) plugins[`plugins/${dir}/${dir}`] = file;
}

export default defineConfig({
  // The compaction snapshot worker and the plugin resolve hooks are loaded by file name (beside
  // the bundle that starts them).
  entry: {
    index: "src/index.ts",
    util: "src/util/index.ts",
    cli: "src/cli/bin.ts",
    migrator: "src/migrator/bin.ts",
    "snapshot-worker": "src/storage/sqlite/snapshot-worker.ts",
    "plugin-imports-hooks": "src/core/plugin-imports-hooks.ts",
    ...plugins,
  },
  // Plugins reach the host through the package's public entry points (resolved by Node as a
  // self-reference), never through a bundled copy of the core.
  external: ["prosody-ts", "prosody-ts/util"],
  // prosodyctl parses its options with yargs-parser before anything else: one bundled chunk
  // instead of its five files saves each prosodyctl run their resolving and loading.
  noExternal: ["yargs-parser"],
  format: ["esm"],
  target: "node20",
  platform: "node",
  splitting: true,
  sourcemap: true,
  clean: true,
  // Type declarations take most of the build (~6 s of ~9): `npm start` (scripts/start.mjs) builds
  // without them; `npm run build` and `npm test` make them (plugins and their tests need them).
  dts: process.env.PROSODY_TS_BUILD === "quick" ? false : { entry: { index: "src/index.ts", util: "src/util/index.ts" } },
});
