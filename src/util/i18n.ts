/**
 * Translated pages: message catalogs in ICU MessageFormat (formatted by intl-messageformat) and
 * the choice of a page's language (an explicit `lang` parameter first, then Accept-Language as
 * negotiator reads it: q-values, `de-AT` falling back to `de`; else the default language).
 *
 * Both libraries are loaded by `loadCatalog()` only, so prosodyctl, which never draws a page,
 * does not pay for them.
 */

/** One language's messages: key → ICU MessageFormat text. */
export type Messages<K extends string = string> = Readonly<Record<K, string>>;

/** A rich-text tag (`<strong>…</strong>` in a message): gets its formatted content. */
export type TagFunction = (chunks: string[]) => string;
export type MessageValues = Readonly<Record<string, string | number | TagFunction>>;

export interface LanguageChoice {
  /** One of the catalog's languages. */
  lang: string;
  /** Chosen by the `lang` parameter (so links should carry it on), not by Accept-Language. */
  explicit: boolean;
}

export interface Catalog<K extends string = string> {
  /** The languages, the default first. */
  readonly languages: readonly string[];
  readonly defaultLanguage: string;
  /**
   * The page's language: `langParam` if it names one of ours (`de`, `DE`, `de-AT`, `de_AT`), else
   * the best of Accept-Language, else the default. Never returns anything but one of `languages`.
   */
  negotiate(langParam: string | undefined, acceptLanguage: string | undefined): LanguageChoice;
  /**
   * Message `key` in `lang` (the default language's when `lang` is not ours), with `values` put
   * in as they are: escaping is the caller's. Tags without a function in `values` keep their
   * markup (`<strong>` stays `<strong>`).
   */
  format(lang: string, key: K, values?: MessageValues): string;
}

/** Argument names and tag names that a message uses (for checking translations against each other). */
export interface MessageShape {
  args: string[];
  tags: string[];
}

const TAG_RE = /^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$/;
// Accept-Language beyond this is cut at a comma: no browser sends that much, and negotiation
// cost stays bounded whatever the header holds.
const ACCEPT_LANGUAGE_MAX = 1024;

/**
 * One of `available` that `tag` names: the same tag (case-insensitive, `_` read as `-`), else its
 * primary language (`de-AT` → `de`). undefined for anything else, junk included.
 */
export function matchLanguage(tag: string | undefined, available: readonly string[]): string | undefined {
  if (tag === undefined || tag.length > 35 || !TAG_RE.test(tag)) return undefined;
  const want = tag.replace(/_/g, "-").toLowerCase();
  const primary = want.split("-")[0];
  return available.find((l) => l.toLowerCase() === want) ?? available.find((l) => l.toLowerCase() === primary);
}

/**
 * Compiles every message of every language (a syntax error throws here, naming the language and
 * key) and returns the catalog. `messages[defaultLanguage]` must exist; a key missing from
 * another language falls back to the default language's text.
 */
export async function loadCatalog<K extends string>(messages: Readonly<Record<string, Messages<K>>>, defaultLanguage: string): Promise<Catalog<K>> {
  const base = messages[defaultLanguage];
  if (!base) throw new Error(`loadCatalog: no messages for the default language "${defaultLanguage}"`);
  const [{ IntlMessageFormat }, { default: Negotiator }] = await Promise.all([import("intl-messageformat"), import("negotiator")]);
  const languages = [defaultLanguage, ...Object.keys(messages).filter((l) => l !== defaultLanguage)];
  type Compiled = { message: InstanceType<typeof IntlMessageFormat>; tags: string[] };
  const compiled = new Map<string, Map<string, Compiled>>();
  for (const lang of languages) {
    const out = new Map<string, Compiled>();
    for (const [key, text] of Object.entries<string>({ ...base, ...messages[lang] })) {
      try {
        const message = new IntlMessageFormat(text, lang);
        out.set(key, { message, tags: messageShape(message.getAst()).tags });
      } catch (e) {
        throw new Error(`loadCatalog: message "${key}" (${lang}) is not valid ICU MessageFormat: ${e instanceof Error ? e.message : e}`);
      }
    }
    compiled.set(lang, out);
  }

  return {
    languages,
    defaultLanguage,
    negotiate(langParam, acceptLanguage) {
      const fromParam = matchLanguage(langParam, languages);
      if (fromParam) return { lang: fromParam, explicit: true };
      let header = acceptLanguage ?? "";
      if (header.length > ACCEPT_LANGUAGE_MAX) header = header.slice(0, header.lastIndexOf(",", ACCEPT_LANGUAGE_MAX) + 1);
      const best = header.trim() === "" ? undefined : new Negotiator({ headers: { "accept-language": header } }).language([...languages]);
      return { lang: best ?? defaultLanguage, explicit: false };
    },
    format(lang, key, values = {}) {
      const entry = (compiled.get(lang) ?? compiled.get(defaultLanguage)!).get(key);
      if (!entry) throw new Error(`No message "${key}"`);
      const { message, tags } = entry;
      const withTags: Record<string, unknown> = { ...values };
      for (const tag of tags) withTags[tag] ??= (chunks: string[]) => `<${tag}>${chunks.join("")}</${tag}>`;
      const out = message.format(withTags as Record<string, string>);
      return Array.isArray(out) ? out.join("") : String(out);
    },
  };
}

/** The argument and tag names in a message's text (throws on a syntax error). */
export async function shapeOf(text: string, lang: string): Promise<MessageShape> {
  const { IntlMessageFormat } = await import("intl-messageformat");
  return messageShape(new IntlMessageFormat(text, lang).getAst());
}

// --- Internal helpers ---

interface AstNode {
  type: number;
  value?: unknown;
  children?: AstNode[];
  options?: Record<string, { value: AstNode[] }>;
}

// intl-messageformat's element types: 1 argument, 2 number, 3 date, 4 time, 5 select, 6 plural, 8 tag.
const ARG_TYPES = new Set([1, 2, 3, 4, 5, 6]);

function messageShape(ast: readonly AstNode[]): MessageShape {
  const args = new Set<string>();
  const tags = new Set<string>();
  const walk = (nodes: readonly AstNode[]) => {
    for (const n of nodes) {
      if (ARG_TYPES.has(n.type) && typeof n.value === "string") args.add(n.value);
      if (n.type === 8 && typeof n.value === "string") tags.add(n.value);
      if (n.children) walk(n.children);
      for (const option of Object.values(n.options ?? {})) walk(option.value);
    }
  };
  walk(ast);
  return { args: [...args].sort(), tags: [...tags].sort() };
}
