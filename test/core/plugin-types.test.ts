/**
 * The plugin contract as a TypeScript author outside this repo sees it: a plugin in a temporary
 * folder, type-checked against the published declarations (dist/index.d.ts, dist/util.d.ts) the
 * way `import … from "prosody-ts"` resolves for a package user. Run after `npm run build`.
 */
import { mkdtempSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import ts from "typescript";

const DIST = resolve(import.meta.dirname, "../../dist");

function typeErrors(source: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), "prosody-ts-types-"));
  const file = join(dir, "mod_typed.ts");
  writeFileSync(file, source);
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    types: ["node"],
    typeRoots: [resolve(import.meta.dirname, "../../node_modules/@types")],
    skipLibCheck: true,
    paths: { "prosody-ts": [join(DIST, "index.d.ts")], "prosody-ts/util": [join(DIST, "util.d.ts")] },
  });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === file)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
}

const PLUGIN = `
import type { HttpEvent, Module } from "prosody-ts";
import { SECRET_PAGE_HEADERS } from "prosody-ts/util";

declare module "prosody-ts" {
  interface ModuleExports {
    greeter: { greet(name: string): string };
  }
}

export default async function (module: Module): Promise<void> {
  await module.depends("http");
  const greeter = await module.depends("greeter");
  const hello: string = greeter.greet("world");
  const event = { username: "x", allowed: true };
  await module.fireEventAsync("user-registering", event);
  module.onUnload(async () => undefined);
  module.provides("http", {
    default_path: "hello",
    headers: SECRET_PAGE_HEADERS,
    route: { "GET /": (e: HttpEvent) => ({ statusCode: 200, body: hello + e.request.path }) },
  });
  module.provides("custom-kind", { anything: 1 });
}
`;

test("a TypeScript plugin outside the repo type-checks against the published declarations", () => {
  assert.ok(existsSync(join(DIST, "index.d.ts")), "dist/index.d.ts is missing: run `npm run build` first");
  assert.equal(typeErrors(PLUGIN), []);
});

test("depends() is typed by ModuleExports, provides('http') by HttpApp: misuse is a type error", () => {
  const errors = typeErrors(`
import type { Module } from "prosody-ts";
declare module "prosody-ts" {
  interface ModuleExports { greeter: { greet(name: string): string } }
}
export default async function (module: Module): Promise<void> {
  const greeter = await module.depends("greeter");
  greeter.wave();
  module.provides("http", { route: 5 });
}
`);
  assert.is(errors.length, 2, errors.join("\n"));
  assert.match(errors[0]!, "Property 'wave' does not exist");
  assert.match(errors[1]!, "number");
  assert.match(errors[1]!, "Record<string, unknown>");
});

test.run();
