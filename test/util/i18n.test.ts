/**
 * src/util/i18n.ts: choosing a page's language (lang parameter, Accept-Language with q-values and
 * region fallback, default) and formatting ICU messages.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadCatalog, matchLanguage, shapeOf, type Catalog } from "../../src/util/i18n.js";

const LANGS = ["en", "de", "fr", "es"];

let catalog: Catalog<"hello" | "count" | "only_en">;

test.before(async () => {
  catalog = await loadCatalog(
    {
      en: { hello: "Hello <strong>{name}</strong>", count: "{n, plural, one {# invite} other {# invites}}", only_en: "English only" },
      de: { hello: "Hallo <strong>{name}</strong>", count: "{n, plural, one {# Einladung} other {# Einladungen}}" } as never,
      fr: { hello: "Bonjour <strong>{name}</strong>", count: "{n, plural, one {# invitation} other {# invitations}}", only_en: "x" },
      es: { hello: "Hola <strong>{name}</strong>", count: "{n, plural, one {# invitación} other {# invitaciones}}", only_en: "x" },
    },
    "en",
  );
});

const pick = (lang: string | undefined, accept?: string) => catalog.negotiate(lang, accept);

test("languages: the default first", () => {
  assert.equal(catalog.languages, LANGS);
  assert.is(catalog.defaultLanguage, "en");
});

test("lang parameter: exact, any case, region fallback, _ for -", () => {
  assert.equal(pick("de"), { lang: "de", explicit: true });
  assert.equal(pick("FR"), { lang: "fr", explicit: true });
  assert.equal(pick("de-AT"), { lang: "de", explicit: true });
  assert.equal(pick("es_MX"), { lang: "es", explicit: true });
  assert.equal(pick("es-419"), { lang: "es", explicit: true });
});

test("lang parameter wins over Accept-Language", () => {
  assert.equal(pick("es", "de-DE,de;q=0.9"), { lang: "es", explicit: true });
});

test("an unknown or hostile lang parameter is ignored: Accept-Language, then the default", () => {
  for (const bad of ["xx", "", "de;", "<script>alert(1)</script>", '"de"', "de-", "-de", "d e", "de\r\nX: 1", "a".repeat(500), "de-AT-".repeat(10)]) {
    assert.equal(pick(bad, "fr"), { lang: "fr", explicit: false }, JSON.stringify(bad));
    assert.equal(pick(bad), { lang: "en", explicit: false }, JSON.stringify(bad));
  }
});

test("Accept-Language: q-values decide", () => {
  assert.is(pick(undefined, "fr;q=0.5, es;q=0.9").lang, "es");
  assert.is(pick(undefined, "de;q=0.1, fr").lang, "fr");
  assert.is(pick(undefined, "en-US,en;q=0.9,de;q=0.8").lang, "en");
  assert.is(pick(undefined, "en;q=0, de").lang, "de");
});

test("Accept-Language: a region falls back to its language; unknown languages are skipped", () => {
  assert.is(pick(undefined, "de-AT").lang, "de");
  assert.is(pick(undefined, "DE-at, en;q=0.5").lang, "de");
  assert.is(pick(undefined, "ja, zh-CN;q=0.9, fr-CA;q=0.8").lang, "fr");
  assert.is(pick(undefined, "es-419,es;q=0.9").lang, "es");
});

test("Accept-Language: nothing usable gives the default", () => {
  for (const h of [undefined, "", "   ", "*", "ja", "de;q=0", ";;;,,q=x", "\u00e9\u00e8"]) {
    assert.equal(pick(undefined, h), { lang: "en", explicit: false }, String(h));
  }
});

test("Accept-Language: a huge header is cut, answered quickly and never throws", () => {
  const huge = Array.from({ length: 20000 }, (_, i) => `x${i % 100}-y;q=0.${i % 9}`).join(",") + ",de";
  const t0 = performance.now();
  assert.is(pick(undefined, huge).lang, "en");
  assert.is(pick(undefined, `de,${huge}`).lang, "de");
  assert.ok(performance.now() - t0 < 500);
});

test("matchLanguage: only the listed languages", () => {
  assert.is(matchLanguage("pt-BR", LANGS), undefined);
  assert.is(matchLanguage("pt-BR", ["en", "pt", "pt-BR"]), "pt-BR");
  assert.is(matchLanguage("pt-PT", ["en", "pt", "pt-BR"]), "pt");
  assert.is(matchLanguage(undefined, LANGS), undefined);
});

test("format: arguments, plurals per language, default tags kept, tag functions", () => {
  assert.is(catalog.format("de", "hello", { name: "Anna" }), "Hallo <strong>Anna</strong>");
  assert.is(catalog.format("en", "hello", { name: "x", strong: (c) => `[${c.join("")}]` }), "Hello [x]");
  assert.is(catalog.format("fr", "count", { n: 1 }), "1 invitation");
  assert.is(catalog.format("fr", "count", { n: 2 }), "2 invitations");
  assert.is(catalog.format("es", "count", { n: 1000 }), "1000 invitaciones");
  // values are put in as they are: escaping is the caller's
  assert.is(catalog.format("en", "hello", { name: "<b>" }), "Hello <strong><b></strong>");
});

test("format: a key missing from a language and an unknown language use the default's", () => {
  assert.is(catalog.format("de", "only_en"), "English only");
  assert.is(catalog.format("pt", "hello", { name: "y" }), "Hello <strong>y</strong>");
});

test("loadCatalog: misuse throws with the language and key named", async () => {
  try {
    await loadCatalog({ en: { a: "ok" }, de: { a: "kaputt {" } }, "en");
    assert.unreachable();
  } catch (e) {
    assert.match(String(e), 'message "a" (de) is not valid ICU MessageFormat');
  }
  try {
    await loadCatalog({ de: { a: "x" } }, "en");
    assert.unreachable();
  } catch (e) {
    assert.match(String(e), 'no messages for the default language "en"');
  }
});

test("shapeOf: arguments (also inside plurals and tags) and tags", async () => {
  assert.equal(await shapeOf("<a>{x}</a> {n, plural, one {{y}} other {#}} {z, select, a {<b>q</b>} other {}}", "en"), {
    args: ["n", "x", "y", "z"],
    tags: ["a", "b"],
  });
});

test.run();
