/**
 * Fast path: evaluates a purely declarative config without the Lua VM. A file qualifies when
 * it holds only `name = literal`, `VirtualHost "x"` / `Component "x" ["mod"]` (optionally
 * followed by an options table), `Include "…"` and comments, where literals are strings,
 * numbers, booleans and tables of those. Every included file must qualify too. Anything else,
 * including every case that would be an error, returns undefined and the caller runs the file
 * on fengari, so both paths give identical results (test/config/fast-path.test.ts checks it).
 *
 * Measured with test/config/bench.ts (code bundled by esbuild as a build ships it) on Debian's
 * stock /etc/prosody/prosody.cfg.lua (272 lines + Include "conf.d/*.cfg.lua"), Node 20, busy
 * 2-core VM (`node -e 0` took 80-140 ms meanwhile), medians of 9 fresh processes / 40 calls:
 *   fast path:  first call ~9.5 ms (~4 ms importing the config code, ~5 ms cold evaluation),
 *               warm ~0.2 ms
 *   fengari VM: first call ~110 ms (~40-55 ms of it importing fengari), warm ~4-6 ms
 * luaparse was considered for this path but costs ~25 ms just to import; hence the scanner.
 */
import {
  COMPONENT_NAMES, INCLUDE_NAMES, MAX_INCLUDE_DEPTH, VIRTUALHOST_NAMES, BUILTIN_NAMES,
  makeObject, nameprepHost, readIncluded, resolveInclude, type RawResult,
} from "./_shared.js";
import { isKeyword, NotDeclarative, Scanner, type Token } from "./_scanner.js";
import type { ConfigSection, OptionValue } from "./types.js";

// --- internal ---

interface Section {
  name: string;
  kind: ConfigSection["kind"];
  file: string;
  line?: number;
  options: Map<string, OptionValue>;
}

interface State {
  sections: Map<string, Section>;
  warnings: string[];
  files: Set<string>;
}

function bail(): never {
  throw new NotDeclarative();
}

/** Returns the evaluated config, or undefined when the file needs the Lua VM. */
export function evaluateDeclarative(text: string, fileName: string): RawResult | undefined {
  const state: State = { sections: new Map(), warnings: [], files: new Set([fileName]) };
  state.sections.set("*", { name: "*", kind: "global", file: fileName, options: new Map() });
  try {
    evaluateFile(text, fileName, state, 0);
  } catch (err) {
    if (err instanceof NotDeclarative) return undefined;
    throw err;
  }
  const sections: ConfigSection[] = [...state.sections.values()].map((s) => {
    const out: ConfigSection = { name: s.name, kind: s.kind, options: makeObject(s.options), file: s.file };
    if (s.line !== undefined) out.line = s.line;
    return out;
  });
  return { sections, warnings: state.warnings, files: [...state.files] };
}

function evaluateFile(text: string, file: string, state: State, depth: number): void {
  if (depth >= MAX_INCLUDE_DEPTH || text.includes("\uFFFD")) bail();
  const scanner = new Scanner(text);
  let tok = scanner.next();
  const advance = () => (tok = scanner.next());
  let current = "*";
  const seen = new Set<string>();
  const set = (section: string, key: string, value: OptionValue) => state.sections.get(section)!.options.set(key, value);

  /** A literal value; leaves `tok` on the following token. Returns the value and its last line. */
  const value = (): [OptionValue, number] => {
    const t = tok;
    if (t.type === "string" || t.type === "number") {
      advance();
      return [t.value, t.endLine];
    }
    if (t.type === "name" && (t.value === "true" || t.value === "false")) {
      advance();
      return [t.value === "true", t.endLine];
    }
    if (t.type === "punct" && t.value === "-") {
      const n = advance();
      if (n.type !== "number") bail();
      advance();
      // Lua integer zero has no sign; a float zero does.
      return [n.value === 0 && !n.float ? 0 : -n.value, n.endLine];
    }
    if (t.type === "punct" && t.value === "{") return table(false);
    return bail();
  };

  /** A table constructor at `tok` ("{"). `namedOnly`: an options table of a section. */
  const table = (namedOnly: boolean): [OptionValue, number] => {
    const list: OptionValue[] = [];
    const named = new Map<string, OptionValue>();
    advance();
    while (!(tok.type === "punct" && tok.value === "}")) {
      let key: string | undefined;
      if (tok.type === "punct" && tok.value === "[") {
        const k = advance();
        // Numeric or number-like keys could collide with list positions: leave them to the VM.
        if (k.type !== "string" || /^[\s+-]*[0-9.]/.test(k.value)) bail();
        advance();
        expectPunct("]");
        expectPunct("=");
        key = k.value;
      } else if (tok.type === "name" && !isKeyword(tok.value)) {
        const name = tok.value;
        advance();
        expectPunct("=");
        key = name;
      }
      if (key === undefined && namedOnly) bail();
      const [v] = value();
      if (key === undefined) list.push(v);
      else named.set(key, v);
      if (tok.type === "punct" && (tok.value === "," || tok.value === ";")) advance();
      else if (!(tok.type === "punct" && tok.value === "}")) bail();
    }
    const end = tok.endLine;
    advance();
    if (named.size === 0) return [list, end];
    list.forEach((v, i) => named.set(String(i + 1), v));
    return [makeObject(named), end];
  };

  const expectPunct = (p: string) => {
    if (tok.type !== "punct" || tok.value !== p) bail();
    advance();
  };

  /** A call's string argument: "x" or ("x"). */
  const stringArg = (): string => {
    if (tok.type === "string") {
      const s = tok.value;
      advance();
      return s;
    }
    expectPunct("(");
    const t = tok as Token; // advanced by expectPunct
    if (t.type !== "string") bail();
    advance();
    expectPunct(")");
    return t.value;
  };

  const isPunct = (t: Token, p: string) => t.type === "punct" && t.value === p;
  const startsCall = (t: Token) => t.type === "string" || isPunct(t, "{") || isPunct(t, "(");

  /** Applies a section's options table (no duplicate tracking, as in Prosody). */
  const applyTable = (section: string) => {
    const [options] = table(true);
    for (const [k, v] of Object.entries(options as Record<string, OptionValue>)) set(section, k, v);
    current = "*";
    if (startsCall(tok)) bail();
  };

  while (tok.type !== "eof") {
    if (isPunct(tok, ";")) {
      advance();
      continue;
    }
    const head = tok;
    if (head.type !== "name" || isKeyword(head.value)) bail();
    advance();
    if (isPunct(tok, "=")) {
      // Assigning a builtin replaces it, and _ENV is the environment itself: not options.
      if (BUILTIN_NAMES.has(head.value) || head.value === "_ENV") bail();
      advance();
      const [v, line] = value();
      const key = `${current}\0${head.value}`;
      if (seen.has(key)) state.warnings.push(`${file}:${line}: Duplicate option '${head.value}'`);
      seen.add(key);
      set(current, head.value, v);
    } else if (VIRTUALHOST_NAMES.has(head.value) || COMPONENT_NAMES.has(head.value)) {
      const kind = VIRTUALHOST_NAMES.has(head.value) ? "VirtualHost" : "Component";
      const name = nameprepHost(stringArg());
      if (name === undefined) bail();
      const existing = state.sections.get(name);
      if (existing && existing.kind !== kind) bail();
      if (!existing) state.sections.set(name, { name, kind, file, line: head.endLine, options: new Map() });
      current = name;
      if (kind === "VirtualHost") {
        set(name, "defined", true);
      } else {
        set(name, "component_module", "component");
        set(name, "load_global_modules", false);
        if (tok.type === "string") {
          set(name, "component_module", tok.value);
          advance();
        }
      }
      if (isPunct(tok, "{")) applyTable(name);
      else if (startsCall(tok)) bail();
    } else if (INCLUDE_NAMES.has(head.value)) {
      const spec = stringArg();
      if (startsCall(tok)) bail();
      const found = resolveInclude(file, spec);
      if (!found.ok) bail();
      for (const included of found.value) {
        const data = readIncluded(included);
        if (!data.ok) bail();
        state.files.add(included);
        evaluateFile(data.value.toString("utf8"), included, state, depth + 1);
      }
    } else {
      bail();
    }
  }
}
