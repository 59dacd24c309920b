/**
 * The translated pages in real Chromium (Debian's, driven by playwright-core): for each language,
 * a person follows an invite from its landing page to "register manually", fills in the form and
 * gets the success page, every page in that language (`<html lang>`, title, headings, buttons).
 * English and French are chosen with the `lang` parameter (the browser asks for another
 * language), German and Spanish by the browser's language (Accept-Language). Screenshots go to
 * test-output/browser/. Skips with the reason when Chromium is missing.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Browser } from "playwright-core";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { startServer } from "../../src/server.js";
import { tempConfig } from "../helpers/cli.js";
import { freePort } from "../helpers/http.js";
import { skip } from "../helpers/skip.js";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const OUT = resolve(import.meta.dirname, "../../test-output/browser");

let rt: Runtime | undefined;
let browser: Browser | undefined;
let port: number;

test.before(async () => {
  if (!CHROMIUM) return;
  setLogLevel("error");
  mkdirSync(OUT, { recursive: true });
  port = await freePort();
  const { dir, config } = tempConfig(`
data_path = "$DIR/data"
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
storage = "memory"
-- Many form posts from 127.0.0.1: the per-address limit is tested elsewhere (api-limits).
register_web_rate_per_ip = false
modules_enabled = { "http", "invites", "invites_page", "register_apps", "invites_register", "invites_register_web" }
VirtualHost "example.com"
site_name = "Example Chat"
`);
  rt = await startServer(await loadConfigFile(config), { cwd: dir });
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--host-resolver-rules=MAP example.com 127.0.0.1`,
    ],
  });
});

test.after(async () => {
  await browser?.close();
  await rt?.stop();
});

interface Expected {
  /** `lang` parameter to add to the invite link, or undefined to let the browser's language choose. */
  param?: string;
  /** The browser's language (its Accept-Language). */
  locale: string;
  title: string;
  choose: string;
  viewAll: string;
  registerManually: string;
  formHeading: string;
  submit: string;
  congratulations: string;
  expired: string;
}

const LANGUAGES: Record<string, Expected> = {
  en: {
    param: "en",
    locale: "de-DE",
    title: "Invite to Example Chat",
    choose: "Choose an app",
    viewAll: "view all apps",
    registerManually: "register an account manually",
    formHeading: "Register on Example Chat",
    submit: "Create account",
    congratulations: "Congratulations!",
    expired: "Invite expired",
  },
  de: {
    locale: "de-AT",
    title: "Einladung zu Example Chat",
    choose: "Wähle eine App",
    viewAll: "alle Apps ansehen",
    registerManually: "registriere ein Konto von Hand",
    formHeading: "Registrierung bei Example Chat",
    submit: "Konto anlegen",
    congratulations: "Herzlichen Glückwunsch!",
    expired: "Einladung abgelaufen",
  },
  fr: {
    param: "fr",
    locale: "es-ES",
    title: "Invitation à Example Chat",
    choose: "Choisissez une application",
    viewAll: "voir toutes les applications",
    registerManually: "créez un compte manuellement",
    formHeading: "Inscription sur Example Chat",
    submit: "Créer le compte",
    congratulations: "Félicitations !",
    expired: "Invitation expirée",
  },
  es: {
    locale: "es-MX",
    title: "Invitación a Example Chat",
    choose: "Elige una aplicación",
    viewAll: "ver todas las aplicaciones",
    registerManually: "registra una cuenta manualmente",
    formHeading: "Registro en Example Chat",
    submit: "Crear cuenta",
    congratulations: "¡Enhorabuena!",
    expired: "Invitación caducada",
  },
};

for (const [lang, want] of Object.entries(LANGUAGES)) {
  test(`${lang}: landing page → register manually → success, all in ${lang}`, async (ctx) => {
    if (!CHROMIUM || !browser || !rt) return skip(ctx, "Chromium not installed (apt install chromium)");
    const invites = rt.modules.get("example.com", "invites")!.exports as { createAccount(): Promise<[{ token: string }?]> };
    const [invite] = await invites.createAccount();
    const token = invite!.token;
    const context = await browser.newContext({ locale: want.locale, viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    const htmlLang = () => page.getAttribute("html", "lang");
    try {
      await page.goto(`http://example.com:${port}/invites_page?${token}${want.param ? `&lang=${want.param}` : ""}`);
      assert.is(await htmlLang(), lang);
      assert.is(await page.title(), want.title);
      assert.is((await page.textContent("h1"))?.trim(), want.title);
      assert.ok(await page.getByRole("heading", { name: want.choose }).isVisible());
      assert.ok(await page.locator(".qr-code svg").count(), "a QR code is drawn");
      // the platform filter's note and its link are translated and work
      await page.getByRole("link", { name: want.viewAll }).click();
      assert.is(await page.locator(".app-card:visible").count(), 7);
      await page.screenshot({ path: join(OUT, `lang-${lang}-1-landing.png`), fullPage: true });

      await page.getByRole("link", { name: want.registerManually }).click();
      await page.waitForURL(/\/register\?t=/);
      if (want.param) assert.match(page.url(), `&lang=${want.param}`);
      else assert.not.match(page.url(), "lang=");
      assert.is(await htmlLang(), lang);
      assert.is((await page.textContent("h1"))?.trim(), want.formHeading);
      await page.fill("input[name=user]", `user-${lang}`);
      await page.fill("input[name=password]", "correct horse battery");
      await page.screenshot({ path: join(OUT, `lang-${lang}-2-form.png`), fullPage: true });
      await Promise.all([page.waitForLoadState("load"), page.getByRole("button", { name: want.submit }).click()]);
      await page.getByRole("heading", { name: want.congratulations }).waitFor();
      assert.is(await htmlLang(), lang);
      assert.is(await page.inputValue("#jid"), `user-${lang}@example.com`);
      await page.screenshot({ path: join(OUT, `lang-${lang}-3-success.png`), fullPage: true });

      // the invite is used up: its landing page says so, in the same language
      await page.goto(`http://example.com:${port}/invites_page?${token}${want.param ? `&lang=${want.param}` : ""}`);
      await page.getByRole("heading", { name: want.expired }).waitFor();
      assert.is(await htmlLang(), lang);
    } finally {
      await context.close();
    }
  });
}

test.run();
