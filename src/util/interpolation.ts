/**
 * The template language of Prosody's util.interpolation, used by every invite page and by URL
 * options such as `invites_page`, `invites_registration_page` and an app's `magic_link_format`.
 * Admins write these templates, so the behaviour (not the code) is Prosody's, edge cases included:
 *
 * - A block is a balanced `{…}`. Inside: a name (`[A-Za-z_][A-Za-z0-9_.]*`, dots walk into
 *   tables), an optional `!` (no escaping), then at most one ASCII punctuation character:
 *   `?` default, `&` then, `~` else, `#` array loop, `%` map loop, `|` filter chain; any other
 *   character ends the block's meaning (`{x:y}` is `{x}`).
 * - `{x}` with x nil and no operator stays in the output literally, braces included. A block
 *   whose text is not a name (`{ x}`, `{1}`) stays literally too. Unbalanced `{` is plain text.
 * - Truth is Lua's: only nil (undefined/null) and `false` are false; `""` and `0` are true.
 * - Loops render the rest of the block once per element with `{idx}` (1-based for `#`) and
 *   `{item}` in scope, outer values still visible; a value that is not a table renders "".
 * - Values are never re-scanned: a value containing `{x}` is output as text.
 * - Path words index tables by string key: `{list.1}` does not reach into an array (Lua's
 *   `t["1"]` is not `t[1]`).
 *
 * Not reproducible: Lua's `tostring` of a table or function (an address) renders as "table" /
 * "function"; indexing a string or number inside a path (a Lua error or a string method) gives nil.
 */

export type Filter = (value: any) => unknown;

export interface RendererOptions {
  /** Applied to every value rendered without `!` (identity when omitted). */
  escape?: (text: string) => string;
  /** Filters for `{x|name}`; without any, `|` is an ordinary (ignored) punctuation mark. */
  filters?: Record<string, Filter>;
}

/** Values are a table: an object (own properties), a Map, or nested arrays/objects/Maps. */
export type TemplateValues = Record<string, unknown> | Map<string, unknown>;

export type Renderer = (template: string, values?: TemplateValues) => string;

/** Creates a `render(template, values)` function (Prosody's `interpolation.new("%b{}", escape, filters)`). */
export function createRenderer(options: RendererOptions = {}): Renderer {
  const escape = options.escape ?? ((s: string) => s);
  const filters = options.filters;

  const render = (template: string, scope: Scope): string => {
    let out = "";
    let pos = 0;
    let from = 0;
    while (true) {
      const open = template.indexOf("{", from);
      if (open < 0) break;
      const close = matchingBrace(template, open);
      if (close < 0) {
        from = open + 1;
        continue;
      }
      const replacement = block(template.slice(open + 1, close), scope);
      if (replacement !== undefined) {
        out += template.slice(pos, open) + replacement;
        pos = close + 1;
      }
      from = close + 1;
    }
    return out + template.slice(pos);
  };

  /** One block's output, or undefined to keep the block's text as it is. */
  const block = (text: string, scope: Scope): string | undefined => {
    const head = NAME.exec(text);
    if (!head) return undefined;
    const name = head[1]!;
    let raw: string | undefined = head[2];
    let op: string | undefined = head[3];
    let end: number | undefined = head[0].length;

    let value = lookup(scope, name);
    if (!truthy(value) && name.indexOf(".", 1) > 0) value = walk(scope, name);

    if (filters) {
      while (op === "|") {
        FILTER.lastIndex = end!;
        const m = FILTER.exec(text);
        if (!m) {
          raw = op = end = undefined;
          break;
        }
        const f = ownValue(filters, m[1]!) as Filter | undefined;
        raw = m[2];
        op = m[3];
        end = FILTER.lastIndex;
        if (value !== undefined && value !== null && typeof f === "function") value = f(value);
      }
    }

    switch (op) {
      case "#":
      case "%": {
        if (!isTable(value)) return "";
        const sub = text.slice(end);
        let out = "";
        for (const [idx, item] of op === "#" ? sequence(value) : pairs(value)) {
          out += render(sub, { vars: { idx, item }, parent: scope });
        }
        return out;
      }
      case "&":
        return truthy(value) ? render(text.slice(end), scope) : "";
      case "~":
        return truthy(value) ? "" : render(text.slice(end), scope);
      case "?":
        if (!truthy(value)) return render(text.slice(end), scope);
        break;
    }
    if (value === undefined || value === null) return undefined;
    const s = luaToString(value);
    return raw === "!" ? s : escape(s);
  };

  return (template, values = {}) => render(String(template), { vars: values });
}

// --- The two renderers the invite modules use ---

const XML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };

/** Escapes `& < > " '` (Prosody's st.xml_escape). */
export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

/** Every UTF-8 byte outside `[A-Za-z0-9.~_-]` as `%xx`, lower-case hex (Prosody's util.http.urlencode). */
export function urlencode(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9.~_-]/.test(c) ? c : `%${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** Replaces each run of characters other than ASCII letters and digits with "-" (Lua `%W+`). */
export function classname(text: string): string {
  return text.replace(/[^A-Za-z0-9]+/g, "-");
}

/** ASCII-only lower-casing (Lua's string.lower in the C locale). */
export function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

const ABSOLUTE_URL = /^[A-Za-z0-9]+:\/\//;

/**
 * HTML renderer: XML escaping; filters `urlescape`, `lower`, `classname`, and `relurl` (an
 * absolute URL passes through, anything else becomes `baseUrl + "/" + value`; without a
 * baseUrl it is left unchanged). Extra filters may be added or override these.
 */
export function createHtmlRenderer(options: { baseUrl?: string; filters?: Record<string, Filter> } = {}): Renderer {
  const { baseUrl } = options;
  return createRenderer({
    escape: xmlEscape,
    filters: {
      urlescape: (v) => urlencode(luaToString(v)),
      lower: (v) => asciiLower(luaToString(v)),
      classname: (v) => classname(luaToString(v)),
      relurl: (v) => {
        const s = luaToString(v);
        return baseUrl === undefined || ABSOLUTE_URL.test(s) ? s : `${baseUrl}/${s}`;
      },
      ...options.filters,
    },
  });
}

/** URL renderer: values are urlencoded; filters `urlescape` and `noscheme` (drops a leading `scheme:`). */
export function createUrlRenderer(options: { filters?: Record<string, Filter> } = {}): Renderer {
  return createRenderer({
    escape: urlencode,
    filters: {
      urlescape: (v) => urlencode(luaToString(v)),
      noscheme: (v) => luaToString(v).replace(/^[^:]+:/, ""),
      ...options.filters,
    },
  });
}

/** Lua's tostring(): integers without a fraction, other numbers as "%.14g", booleans as words. */
export function luaToString(value: unknown): string {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
      return luaNumber(value);
    case "boolean":
    case "bigint":
      return String(value);
    case "function":
      return "function";
    case "undefined":
      return "nil";
    case "object":
      return value === null ? "nil" : "table";
    default:
      return String(value);
  }
}

// --- Internal helpers ---

interface Scope {
  vars: unknown;
  parent?: Scope;
}

/** Name, raw flag, operator (one ASCII punctuation character) at the start of a block. */
const NAME = /^([A-Za-z_][A-Za-z0-9_.]*)(!?)([\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]?)/;
const FILTER = /([A-Za-z_][A-Za-z0-9_.]*)(!?)([\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]?)/y;

function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b) depth++;
    else if (c === 0x7d && --depth === 0) return i;
  }
  return -1;
}

function truthy(v: unknown): boolean {
  return v !== undefined && v !== null && v !== false;
}

function isTable(v: unknown): v is object {
  return typeof v === "object" && v !== null;
}

/** `t[key]` for a string key: own properties of objects, Map entries; nil for anything else. */
function ownValue(t: unknown, key: string): unknown {
  if (t instanceof Map) return t.get(key);
  if (!isTable(t) || Array.isArray(t)) return undefined;
  return Object.prototype.hasOwnProperty.call(t, key) ? (t as Record<string, unknown>)[key] : undefined;
}

/** A name in the innermost scope that has it (loop scopes fall back to the outer values). */
function lookup(scope: Scope | undefined, name: string): unknown {
  for (let s = scope; s; s = s.parent) {
    const v = ownValue(s.vars, name);
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

/** `a.b.c`: word by word from the scope, stopping at the first false value. */
function walk(scope: Scope, name: string): unknown {
  let value: unknown;
  let first = true;
  for (const word of name.split(".")) {
    if (word === "") continue;
    value = first ? lookup(scope, word) : ownValue(value, word);
    first = false;
    if (!truthy(value)) break;
  }
  return value;
}

/** ipairs(): 1-based, stopping at the first nil. */
function* sequence(t: object): Generator<[number, unknown]> {
  if (Array.isArray(t)) {
    for (let i = 0; i < t.length; i++) {
      if (t[i] === undefined || t[i] === null) return;
      yield [i + 1, t[i]];
    }
    return;
  }
  for (let i = 1; ; i++) {
    const v = t instanceof Map ? (t.get(i) ?? t.get(String(i))) : ownValue(t, String(i));
    if (v === undefined || v === null) return;
    yield [i, v];
  }
}

/** pairs(): arrays by 1-based index, then maps/objects in insertion order. */
function* pairs(t: object): Generator<[unknown, unknown]> {
  if (Array.isArray(t)) {
    for (let i = 0; i < t.length; i++) if (t[i] !== undefined && t[i] !== null) yield [i + 1, t[i]];
    return;
  }
  const entries = t instanceof Map ? [...t.entries()] : Object.entries(t);
  for (const [k, v] of entries) if (v !== undefined && v !== null) yield [k, v];
}

function luaNumber(n: number): string {
  if (Number.isNaN(n)) return "nan";
  if (n === Infinity) return "inf";
  if (n === -Infinity) return "-inf";
  if (Number.isInteger(n) && Math.abs(n) < 2 ** 63) return String(n);
  // "%.14g"
  const exp = Number(n.toExponential(13).split("e")[1]);
  if (exp < -4 || exp >= 14) {
    const [mantissa, e] = n.toExponential(13).split("e") as [string, string];
    const m = mantissa.includes(".") ? mantissa.replace(/0+$/, "").replace(/\.$/, "") : mantissa;
    const sign = e.startsWith("-") ? "-" : "+";
    return `${m}e${sign}${e.replace(/^[+-]/, "").padStart(2, "0")}`;
  }
  const fixed = n.toFixed(Math.max(0, 13 - exp));
  return fixed.includes(".") ? fixed.replace(/0+$/, "").replace(/\.$/, "") : fixed;
}
