/**
 * Timing of the two evaluation paths (not a test):
 *   node --import tsx test/config/bench.ts [config file, default /etc/prosody/prosody.cfg.lua]
 * src/core/config is bundled with esbuild (as a build would ship it, fengari external and the
 * VM in its own lazily imported chunk) into a temporary directory. "first call" runs in a
 * fresh `node` process and includes importing the config code (and fengari for the VM);
 * "warm" is the median of repeated calls in one process.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const file = process.argv[2] ?? "/etc/prosody/prosody.cfg.lua";
const root = fileURLToPath(new URL("../../", import.meta.url));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), "config-bench-"));
try {
  const esbuild = await import("esbuild");
  await esbuild.build({
    entryPoints: { load: join(root, "src/core/config/load.ts") },
    outdir: dir, bundle: true, splitting: true, format: "esm", platform: "node", external: ["fengari"], logLevel: "error",
  });
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  const child = join(dir, "child.mjs");
  writeFileSync(child, `
    import { readFileSync } from "node:fs";
    const [mode, file, rounds] = process.argv.slice(2);
    const t0 = performance.now();
    const { evaluateConfig } = await import("./load.js");
    const text = readFileSync(file);
    if (!await evaluateConfig(text, file, {}, mode)) throw new Error("the fast path does not accept " + file);
    const first = performance.now() - t0;
    const warm = [];
    for (let i = 0; i < Number(rounds); i++) {
      const t = performance.now();
      await evaluateConfig(text, file, {}, mode);
      warm.push(performance.now() - t);
    }
    console.log(JSON.stringify({ first, warm }));
  `);
  const t0 = performance.now();
  spawnSync(process.execPath, ["-e", "0"]);
  console.log(`node -e 0: ${(performance.now() - t0).toFixed(0)} ms (machine noise reference)`);
  for (const mode of ["fast", "vm"] as const) {
    const first: number[] = [];
    let warm: number[] = [];
    for (let i = 0; i < 9; i++) {
      const out = spawnSync(process.execPath, [child, mode, file, i === 0 ? "100" : "0"], { encoding: "utf8" });
      if (out.status !== 0) throw new Error(out.stderr);
      const r = JSON.parse(out.stdout) as { first: number; warm: number[] };
      first.push(r.first);
      if (i === 0) warm = r.warm.slice(20);
    }
    console.log(
      `${mode.padEnd(4)}  first call: median ${median(first).toFixed(1)} ms (min ${Math.min(...first).toFixed(1)})` +
      `   warm: median ${median(warm).toFixed(2)} ms (min ${Math.min(...warm).toFixed(2)})`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
