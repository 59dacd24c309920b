/** scripts/check-structure.mjs on fixture trees: files over 500 lines and import cycles among src/ files. */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkStructure, importsOf, MAX_LINES } from "../../scripts/check-structure.mjs";

const SCRIPT = fileURLToPath(new URL("../../scripts/check-structure.mjs", import.meta.url));
const made: string[] = [];
process.on("exit", () => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "prosody-ts-structure-"));
  made.push(root);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), text);
  }
  return root;
}

const lines = (n: number) => Array.from({ length: n }, (_, i) => `export const v${i} = ${i};`).join("\n") + "\n";

const BAD = {
  // a → b by value, b → a by type only: still a cycle.
  "src/core/a.ts": `import { b } from "./b.js";\nexport const a = b;\nexport type A = string;\n`,
  "src/core/b.ts": `import type { A } from "./a.js";\nexport const b: A = "b";\n`,
  // A lazy import() closes a cycle too; "./e" without extension resolves to e.ts, "./f" to f/index.ts.
  "src/d.ts": `export const load = () => import("./e.js");\n`,
  "src/e.ts": `export * from "./f";\n`,
  "src/f/index.ts": `import { load } from "../d";\nexport const f = load;\n`,
  // Only mentioned, not imported: no edge back to a.ts.
  "src/quiet.ts": `// import { a } from "./core/a.js";\nimport { b } from "./core/b.js";\nexport const s = "import('./core/a.js')" + b;\n`,
  "src/exactly.ts": lines(MAX_LINES),
  "plugins/mod_big/mod_big.ts": lines(MAX_LINES + 1),
  // Cycles among plugins are not this check's business; neither is a non-code file.
  "plugins/mod_p/p.ts": `import { q } from "./q.js";\nexport const p = q;\n`,
  "plugins/mod_p/q.ts": `import { p } from "./p.js";\nexport const q = () => p;\n`,
  "plugins/mod_p/page.html": lines(MAX_LINES + 10),
};

test("a tree with two cycles and an oversized file: all reported, with a shortest cycle each", () => {
  const r = checkStructure(tree(BAD));
  assert.equal(r.oversized, [{ file: "plugins/mod_big/mod_big.ts", lines: MAX_LINES + 1 }]);
  assert.equal(r.cycles.map((c) => c.members).sort(), [
    ["src/core/a.ts", "src/core/b.ts"],
    ["src/d.ts", "src/e.ts", "src/f/index.ts"],
  ]);
  const byFirst = Object.fromEntries(r.cycles.map((c) => [c.members[0], c.example]));
  assert.equal(byFirst["src/core/a.ts"], ["src/core/a.ts", "src/core/b.ts", "src/core/a.ts"]);
  assert.equal(byFirst["src/d.ts"], ["src/d.ts", "src/e.ts", "src/f/index.ts", "src/d.ts"]);
});

test("the script exits 1 and lists each offender; a clean tree exits 0", () => {
  const bad = spawnSync(process.execPath, [SCRIPT, "--root", tree(BAD)], { encoding: "utf8" });
  assert.is(bad.status, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, `too long: plugins/mod_big/mod_big.ts: ${MAX_LINES + 1} lines (at most ${MAX_LINES})`);
  assert.match(bad.stdout, "import cycle among 2 files: src/core/a.ts → src/core/b.ts → src/core/a.ts");
  assert.match(bad.stdout, "import cycle among 3 files: src/d.ts → src/e.ts → src/f/index.ts → src/d.ts");
  assert.match(bad.stdout, "structure check failed: 1 file(s) too long, 2 import cycle(s)");

  const good = tree({
    "src/core/a.ts": `import type { B } from "./b.js";\nexport const a = (x: B) => x;\n`,
    "src/core/b.ts": `export type B = number;\n`,
    "src/index.ts": `export * from "./core/a.js";\nimport "node:fs";\nimport { x } from "../outside.js";\n`,
    "src/exactly.ts": lines(MAX_LINES),
  });
  const ok = spawnSync(process.execPath, [SCRIPT, "--root", good], { encoding: "utf8" });
  assert.is(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, `structure ok: 4 source files, none over ${MAX_LINES} lines, no import cycle in src/`);
});

test("importsOf: every form of relative import, nothing from comments or strings, no packages", () => {
  const text = [
    `import a from "./a.js";`,
    `import type { T } from "../t.js";`,
    `import "./side-effect.js";`,
    `export { x } from "./x.js";`,
    `export * as ns from "./ns.js";`,
    `import fs = require("./legacy");`,
    `type L = typeof import("./lazy-type.js");`,
    `const m = await import("./dynamic.js");`,
    `const n = await import(name);`,
    `import { readFile } from "node:fs/promises";`,
    `import { test } from "uvu";`,
    `// import "./commented.js";`,
    `const s = 'import "./in-a-string.js"';`,
  ].join("\n");
  assert.equal(importsOf(text), ["./a.js", "../t.js", "./side-effect.js", "./x.js", "./ns.js", "./legacy", "./lazy-type.js", "./dynamic.js"]);
});

test.run();
