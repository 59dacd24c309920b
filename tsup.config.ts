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
    // A stable name for the rest of prosodyctl, which the CommonJS fast entry (below) imports.
    prosodyctl: "src/cli/prosodyctl.ts",
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
  onSuccess: buildFastEntry,
  dts: process.env.PROSODY_TS_BUILD === "quick" ? false : { entry: { index: "src/index.ts", util: "src/util/index.ts" } },
});

/**
 * dist/cli-fast.cjs: what prosodyctl-shim/prosodyctl runs. The same src/cli/bin.ts, bundled into
 * one CommonJS function (not loaded by require(): the executable compiles it), so that a command the running server runs (and help, usage errors) never
 * starts Node's ES module loader: ~10 ms of a ~90 ms command (issue 15: our command through the
 * server within Prosody's time × 2). When prosodyctl runs the command itself, it imports the ES
 * module build (dist/prosodyctl.js) as before. Built after the ES modules, so their clean-up of
 * dist/ cannot remove it.
 */
async function buildFastEntry(): Promise<void> {
  const { build } = await import("esbuild");
  await build({
    entryPoints: { "cli-fast": "src/cli/bin.ts" },
    outdir: "dist",
    outExtension: { ".js": ".cjs" },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    // Kept as import(): the ES module build, loaded only when the command runs here.
    external: ["./prosodyctl.js", "prosody-ts", "prosody-ts/util"],
    // The file is one function expression, Node's CommonJS wrapper written in (the banner stays on
    // line 1, so line numbers match the source map): prosodyctl-shim/prosodyctl compiles the file's
    // text as it is, with its code cache, instead of a wrapped copy (100 kB more to allocate at
    // every start, enough to bring a garbage collection into a command run through the server).
    // Code that finds files beside itself reads import.meta.url; in CommonJS that is __filename.
    banner: {
      js:
        '(function (exports, require, module, __filename, __dirname, __prosodyctlImport) {"use strict";' +
        'const __import_meta_url = require("node:url").pathToFileURL(__filename).href;',
    },
    footer: { js: "})" },
    define: { "import.meta.url": "__import_meta_url" },
    // Half the bytes to compile at every start; names are kept for readable stack traces.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: true,
    logLevel: "warning",
  });
  // @ts-expect-error: a plain .mjs build script, without type declarations.
  const { buildCodeCache } = await import("./scripts/code-cache.mjs");
  const failed: string | undefined = await buildCodeCache();
  if (failed) console.warn(`dist/cli-fast.cjs.cache not made (prosodyctl starts without it, a little slower): ${failed}`);
}
