#!/usr/bin/env node
// Checks two rules of the code layout and exits 1 listing every offender:
//   1. no source file in src/ or plugins/ is over 500 lines (a file must stay readable top to bottom);
//   2. no import cycle among src/ files.
// Every relative import counts: `import type` too (a type cycle still means neither file can be
// understood, or split out, without the other) and `import("…")` with a literal path (lazy loading
// changes when a module runs, not which modules depend on each other).
// Usage: node scripts/check-structure.mjs [--root <dir>]   (default: the repository)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

export const MAX_LINES = 500;
const SOURCE = /\.(ts|tsx|mts|cts|js|mjs|cjs)$/;

function sourceFiles(dir) {
  let entries;
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return [];
  }
  const out = [];
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (SOURCE.test(name) && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

function lineCount(text) {
  if (text === "") return 0;
  return text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

/** The relative specifiers a file imports or re-exports (static, type-only and literal dynamic). */
export function importsOf(text, fileName = "file.ts") {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false);
  const found = [];
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      found.push(node.moduleReference.expression.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteralLike(node.arguments[0])) {
      found.push(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found.filter((s) => s.startsWith("./") || s.startsWith("../"));
}

/** Resolves "./x.js" to x.ts (as TypeScript's bundler resolution does), or undefined. */
function resolveImport(from, spec, known) {
  const base = resolve(dirname(from), spec);
  const stem = base.replace(/\.(js|mjs|cjs|ts|mts|cts|tsx)$/, "");
  const candidates = [base, `${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${stem}.cts`, `${stem}.js`, `${stem}.mjs`, join(base, "index.ts"), join(base, "index.js")];
  return candidates.find((c) => known.has(c));
}

/** Strongly connected components (Tarjan), as arrays of files; only those that hold a cycle. */
function cycles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const out = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || graph.get(v).has(v)) out.push(comp.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) strong(v);
  return out;
}

/** One shortest cycle through `start` inside `members` (breadth-first), as a list ending at start. */
function shortestCycle(graph, start, members) {
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of [...graph.get(v)].sort()) {
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = prev.get(u)) path.splice(1, 0, u);
        return [...path, start];
      }
      if (members.has(w) && !prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

/** Runs both checks under `root`; returns { oversized, cycles, files } with paths relative to root. */
export function checkStructure(root) {
  const files = [...sourceFiles(join(root, "src")), ...sourceFiles(join(root, "plugins"))];
  const oversized = [];
  const texts = new Map();
  for (const f of files) {
    const text = readFileSync(f, "utf8");
    texts.set(f, text);
    const lines = lineCount(text);
    if (lines > MAX_LINES) oversized.push({ file: relative(root, f), lines });
  }
  const srcDir = join(root, "src") + "/";
  const src = new Set(files.filter((f) => f.startsWith(srcDir)));
  const graph = new Map();
  for (const f of src) {
    const deps = new Set();
    for (const spec of importsOf(texts.get(f), f)) {
      const to = resolveImport(f, spec, src);
      if (to) deps.add(to);
    }
    graph.set(f, deps);
  }
  const found = cycles(graph).map((members) => ({
    members: members.map((m) => relative(root, m)),
    example: shortestCycle(graph, members[0], new Set(members)).map((m) => relative(root, m)),
  }));
  return { oversized, cycles: found, files: files.length };
}

function main() {
  const args = process.argv.slice(2);
  const at = args.indexOf("--root");
  const root = resolve(at >= 0 && args[at + 1] ? args[at + 1] : new URL("..", import.meta.url).pathname);
  const r = checkStructure(root);
  for (const o of r.oversized) console.log(`too long: ${o.file}: ${o.lines} lines (at most ${MAX_LINES})`);
  for (const c of r.cycles) {
    console.log(`import cycle among ${c.members.length} files: ${c.example.join(" → ")}`);
    if (c.members.length > c.example.length - 1) console.log(`  (all files of this cycle: ${c.members.join(", ")})`);
  }
  if (r.oversized.length || r.cycles.length) {
    console.log(`structure check failed: ${r.oversized.length} file(s) too long, ${r.cycles.length} import cycle(s)`);
    process.exit(1);
  }
  console.log(`structure ok: ${r.files} source files, none over ${MAX_LINES} lines, no import cycle in src/`);
}

if (process.argv[1] && resolve(process.argv[1]) === new URL(import.meta.url).pathname) main();
