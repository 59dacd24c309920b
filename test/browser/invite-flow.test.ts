/**
 * The whole path a person takes, in real Chromium (Debian's, driven by playwright-core): an invite
 * created through the API, its landing page with QR code and app list, "register manually", the
 * form, the success page; plus an expired invite and a taken username. Screenshots go to
 * test-output/browser/ (look at them). Skips with the reason when Chromium is missing.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Browser, Page } from "playwright-core";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { startServer } from "../../src/server.js";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest } from "../helpers/http.js";
import { skip } from "../helpers/skip.js";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const OUT = resolve(import.meta.dirname, "../../test-output/browser");

let rt: Runtime | undefined;
let browser: Browser | undefined;
let port: number;
let dir: string;
let config: string;
let key: string;

test.before(async () => {
  if (!CHROMIUM) return;
  setLogLevel("error");
  mkdirSync(OUT, { recursive: true });
  port = await freePort();
  ({ dir, config } = tempConfig(`
data_path = "$DIR/data"
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
storage = "sql"
modules_enabled = { "http", "invites", "invites_api", "invites_page", "register_apps", "invites_register", "invites_register_web" }
VirtualHost "example.com"
VirtualHost "expired.example"
invite_expiry = -60
`));
  rt = await startServer(await loadConfigFile(config), { cwd: dir });
  key = (await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir })).stdout.trim();
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
      // The virtual hosts' names point at our loopback server.
      `--host-resolver-rules=MAP example.com 127.0.0.1, MAP expired.example 127.0.0.1`,
    ],
  });
});

test.after(async () => {
  await browser?.close();
  await rt?.stop();
});

async function newInvite(host = "example.com", apiKey = key): Promise<string> {
  const r = await rawRequest(port, `GET /invites_api?key=${apiKey} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  assert.is(r.status, 201);
  return r.header("location")!;
}

async function shot(page: Page, name: string) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

test("invite → landing page (QR, apps) → register manually → success", async (ctx) => {
  if (!CHROMIUM || !browser) return skip(ctx, "Chromium not installed (apt install chromium)");
  const location = await newInvite();
  assert.match(location, new RegExp(`^http://example\\.com:${port}/invites_page\\?[A-Za-z0-9_-]{24}$`));
  const token = location.split("?")[1]!;
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.goto(location);
  assert.is(await page.title(), "Invite to example.com");
  assert.ok(await page.locator(".qr-code svg").count(), "a QR code is drawn");
  const cards = page.locator(".app-card");
  assert.is(await cards.count(), 7, "seven apps");
  const names = await page.locator(".app-card .app-name").allTextContents();
  for (const app of ["Conversations", "Siskin IM", "Dino", "Gajim", "Monal"]) assert.ok(names.includes(app), app);
  // The platform filter shows this desktop's apps first; "view all apps" shows every one.
  const visible = async () => (await cards.evaluateAll((els) => els.filter((e: any) => e.offsetParent !== null).length));
  assert.ok((await visible()) < 7, "filtered to this platform");
  await shot(page, "01-landing");
  await page.getByRole("link", { name: "view all apps" }).click();
  assert.is(await visible(), 7);
  await shot(page, "01b-all-apps");
  await page.getByRole("link", { name: "register an account manually" }).click();
  await page.waitForURL(/\/register\?t=/);
  assert.match(page.url(), `t=${token}`);
  await page.fill("input[name=user]", "Browser.User");
  await page.fill("input[name=password]", "correct horse battery");
  await shot(page, "02-form");
  await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
  await page.waitForSelector("text=Congratulations!");
  assert.is(await page.inputValue("#jid"), "browser.user@example.com");
  assert.not.match(await page.content(), "correct horse battery", "the password is never shown");
  await shot(page, "03-success");
  // the invite is used up: its landing page now says so
  await page.goto(location);
  await page.waitForSelector("text=Invite expired");
  await page.close();
});

test("an expired invite shows the expired page", async (ctx) => {
  if (!CHROMIUM || !browser) return skip(ctx, "Chromium not installed (apt install chromium)");
  const expiredKey = (await prosodyctl(["--config", config, "mod_invites_api", "create", "expired.example"], { cwd: dir })).stdout.trim();
  const location = await newInvite("expired.example", expiredKey);
  const page = await browser.newPage();
  await page.goto(location);
  await page.waitForSelector("text=Invite expired");
  assert.match((await page.textContent("body")) ?? "", "Sorry, it looks like this invite code has expired!");
  await shot(page, "04-expired");
  await page.close();
});

test("a taken username is refused on the form, case-insensitively", async (ctx) => {
  if (!CHROMIUM || !browser) return skip(ctx, "Chromium not installed (apt install chromium)");
  const location = await newInvite();
  const token = location.split("?")[1]!;
  const page = await browser.newPage();
  await page.goto(`http://example.com:${port}/register?t=${token}`);
  await page.fill("input[name=user]", "BROWSER.USER");
  await page.fill("input[name=password]", "another long password");
  await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
  await page.waitForSelector(".alert-warning");
  assert.is((await page.textContent(".alert-warning"))?.trim(), "This username is already in use.");
  await shot(page, "05-taken");
  await page.close();
});

test.run();
