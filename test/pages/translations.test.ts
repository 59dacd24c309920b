/**
 * The message files of the translated pages (mod_invites_page/locales, mod_invites_register_web/
 * locales): every language has every key, with the same arguments and tags as English, and every
 * message is valid ICU MessageFormat whose own text is safe to put into HTML (and into the invite
 * pages' templates) as it is.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PAGE_MESSAGES } from "../../plugins/mod_invites_page/locales/index.js";
import { REGISTER_MESSAGES } from "../../plugins/mod_invites_register_web/locales/index.js";
import { appId, DEFAULT_APPS, type App } from "../../plugins/mod_register_apps/apps.js";
import { BUILTIN_APP_TEXTS } from "../../plugins/mod_register_apps/locales/index.js";
import { loadCatalog, shapeOf } from "../../src/util/i18n.js";

const CATALOGS: Record<string, Readonly<Record<string, Readonly<Record<string, string>>>>> = {
  mod_invites_page: PAGE_MESSAGES,
  mod_invites_register_web: REGISTER_MESSAGES,
};
const LANGUAGES = ["en", "de", "fr", "es"];

for (const [plugin, messages] of Object.entries(CATALOGS)) {
  test(`${plugin}: English, German, French and Spanish, English first`, () => {
    assert.equal(Object.keys(messages), LANGUAGES);
  });

  test(`${plugin}: every language has exactly the English keys`, () => {
    const keys = Object.keys(messages.en!).sort();
    assert.ok(keys.length > 20);
    for (const lang of LANGUAGES) assert.equal(Object.keys(messages[lang]!).sort(), keys, lang);
  });

  test(`${plugin}: every message has the English message's arguments and tags`, async () => {
    for (const [key, english] of Object.entries(messages.en!)) {
      const want = await shapeOf(english, "en");
      for (const lang of LANGUAGES) assert.equal(await shapeOf(messages[lang]![key]!, lang), want, `${lang} ${key}`);
    }
  });

  test(`${plugin}: the messages' own text is plain (no markup but the tags, no template syntax)`, async () => {
    const catalog = await loadCatalog(messages, "en");
    for (const [key, english] of Object.entries(messages.en!)) {
      const { args, tags } = await shapeOf(english, "en");
      const values: Record<string, string | number | ((c: string[]) => string)> = {};
      for (const a of args) values[a] = 2;
      for (const tag of tags) values[tag] = (c) => c.join("");
      for (const lang of LANGUAGES) {
        const text = catalog.format(lang, key as never, values);
        assert.not.match(text, /[<>&"{}|]/, `${lang} ${key}: ${text}`);
        assert.ok(text.trim() === text && text !== "", `${lang} ${key}: no outer blanks, not empty`);
        if (lang !== "en") assert.is.not(text === catalog.format("en", key as never, values) && text.length > 12, true, `${lang} ${key} is translated`);
      }
    }
  });
}

test("mod_invites_page: only the tags the templates draw", async () => {
  for (const english of Object.values(PAGE_MESSAGES.en!)) {
    for (const tag of (await shapeOf(english, "en")).tags) assert.ok(["strong", "platform", "all", "register", "back"].includes(tag), tag);
  }
});

test("mod_invites_register_web: only <strong>, and none in the error texts (they are escaped whole)", async () => {
  for (const [key, english] of Object.entries(REGISTER_MESSAGES.en!)) {
    const { tags } = await shapeOf(english, "en");
    assert.ok(tags.every((t) => t === "strong"), key);
    if (key.startsWith("error.")) assert.equal(tags, [], key);
  }
});

test("mod_register_apps: every built-in app's texts in German, French and Spanish, button for button", () => {
  assert.equal(Object.keys(BUILTIN_APP_TEXTS), ["de", "fr", "es"]);
  // the first app of an id is the one listed (the second Monal is never shown)
  const listed = (DEFAULT_APPS as ReadonlyArray<App>).filter((app, i) => DEFAULT_APPS.findIndex((a) => appId(a) === appId(app)) === i);
  for (const [lang, texts] of Object.entries(BUILTIN_APP_TEXTS)) {
    assert.equal(Object.keys(texts).sort(), listed.map((a) => appId(a)!).sort(), lang);
    for (const app of listed) {
      const t = texts[appId(app)!]!;
      const label = `${lang} ${app.name}`;
      assert.is(t.buttons.length, app.download?.buttons?.length ?? 0, label);
      assert.is(t.setup !== undefined, app.setup?.text !== undefined, `${label}: setup text`);
      for (const s of [t.text, ...t.buttons, t.setup ?? "x"]) {
        assert.not.match(s, /[<>&"{}|]/, label);
        assert.is.not(s, app.text, `${label}: translated`);
      }
    }
  }
});

test.run();
