/**
 * The pages of the register form, written for this host (self-contained HTML, no external
 * stylesheets or scripts), in the visitor's language (texts from locales/). Every interpolated
 * value goes through esc(). The password is never written into any page.
 */
import type { MessageValues } from "prosody-ts/util";
import type { RegisterKey } from "./locales/index.js";

/** The language a page is drawn in, and its texts (values are put in as given: escape them). */
export interface PageLanguage {
  lang: string;
  t: (key: RegisterKey, values?: MessageValues) => string;
}

/** An app from mod_register_apps (only the fields used here). */
export interface SiteApp {
  id?: string;
  name: string;
  supports_preauth_uri?: boolean;
  link?: string;
  download?: { text?: string; buttons?: Array<{ text?: string; image?: string; url?: string; target?: string; alttext?: string }> };
  setup?: { text?: string };
  [field: string]: unknown;
}

export interface FormPage {
  siteName: string;
  domain: string;
  token: string;
  uri: string;
  app?: SiteApp;
  appId?: string;
  minLength: number;
  /** Alert shown above the form (alert-warning). */
  message?: string;
  /** Username to put back into the field after an error. */
  username?: string;
  /** Fixed username for a username-bound invite. */
  fixedUsername?: string;
  /** Password-reset invite: the account whose password is reset. */
  resetFor?: string;
}

export interface SuccessPage {
  siteName: string;
  jid: string;
  app?: SiteApp;
  webchatUrl?: string;
  reset?: boolean;
}

export function esc(value: unknown): string {
  return String(value ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Only links a browser can follow safely (no javascript: and the like). */
function safeUrl(url: unknown): string | undefined {
  return typeof url === "string" && /^(https?:|xmpp:|\/|[^:]*$)/i.test(url.trim()) ? url : undefined;
}

const STYLE = `body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#eef2f5;color:#1d2329;line-height:1.5}
main{max-width:34rem;margin:2rem auto;background:#fff;border-radius:.6rem;box-shadow:0 2px 10px rgba(0,0,0,.12);overflow:hidden}
header{background:#2a6f97;color:#fff;padding:1rem 1.5rem}header h1{margin:0;font-size:1.5rem;word-break:break-word}
section{padding:1rem 1.5rem 1.5rem}h2{font-size:1.2rem;margin:.5rem 0 1rem}h3{font-size:1rem;margin:1.2rem 0 .4rem}
label{display:block;font-weight:600;margin:.8rem 0 .3rem}.field{display:flex;align-items:stretch}
input[type=text],input[type=password]{flex:1;min-width:0;font-size:1rem;padding:.5rem;border:1px solid #aab4bd;border-radius:.3rem}
.suffix{padding:.5rem;background:#e4e9ed;border:1px solid #aab4bd;border-left:0;border-radius:0 .3rem .3rem 0}
.field input{border-radius:.3rem 0 0 .3rem}.hint{display:block;color:#5b6770;font-size:.85rem;margin-top:.2rem}
button,.button{display:inline-block;margin-top:1.2rem;font-size:1rem;padding:.55rem 1.2rem;border:0;border-radius:.3rem;background:#2a6f97;color:#fff;text-decoration:none;cursor:pointer}
.alert{padding:.7rem 1rem;border-radius:.3rem;margin:.8rem 0}.alert-warning{background:#fff3cd;border:1px solid #f0d98c}
.alert-danger{background:#f8d7da;border:1px solid #eeb2b8}.alert-info{background:#dcebf5;border:1px solid #b5d3e7}
.downloads a{display:inline-block;margin:.3rem .5rem .3rem 0}.downloads img{max-height:3rem}`;

/** `heading` defaults to the title; both follow Prosody's templates (facts, not markup). */
function layout(lang: string, title: string, body: string, heading = title): string {
  return `<!DOCTYPE html>
<html lang="${esc(lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<title>${esc(title)}</title>
<style>
${STYLE}
</style>
</head>
<body>
<main>
<header><h1>${esc(heading)}</h1></header>
<section>
${body}
</section>
</main>
</body>
</html>
`;
}

export function renderForm(p: FormPage, { lang, t }: PageLanguage): string {
  const parts: string[] = [];
  const appName = p.app ? esc(p.app.name) : undefined;
  const siteName = esc(p.siteName);
  if (p.resetFor !== undefined) {
    parts.push(`<h2>${t("form.reset_heading")}</h2>`, `<p>${t("form.reset_text", { jid: esc(`${p.resetFor}@${p.domain}`) })}</p>`);
  } else {
    parts.push(`<p>${appName ? t("form.intro_app", { site_name: siteName, app_name: appName }) : t("form.intro", { site_name: siteName })}</p>`);
    if (p.app?.supports_preauth_uri) {
      parts.push(
        `<div class="alert alert-info"><p>${t("form.preauth_text", { app_name: appName! })}</p>` +
          `<a class="button" href="${esc(p.uri)}">${t("form.preauth_open", { app_name: appName! })}</a></div>`,
      );
    }
    parts.push(`<h2>${t("form.heading")}</h2>`);
  }
  if (p.message) parts.push(`<div class="alert alert-warning" role="alert">${esc(p.message)}</div>`);

  const fixed = p.resetFor ?? p.fixedUsername;
  const userValue = fixed ?? p.username;
  parts.push(
    `<form method="post">`,
    `<label for="user">${t("form.username")}</label>`,
    `<div class="field"><input type="text" id="user" name="user" required minlength="1" maxlength="30" autocomplete="username" autocapitalize="none" spellcheck="false"${userValue ? ` value="${esc(userValue)}"` : ""}${fixed !== undefined ? " readonly" : " autofocus"}><span class="suffix">@${esc(p.domain)}</span></div>`,
    fixed !== undefined
      ? `<small class="hint">${t("form.username_fixed")}</small>`
      : `<small class="hint">${t("form.username_hint")}</small>`,
    `<label for="password">${t(p.resetFor !== undefined ? "form.new_password" : "form.password")}</label>`,
    `<div class="field"><input type="password" id="password" name="password" required minlength="${esc(p.minLength)}" maxlength="1023" autocomplete="new-password"${fixed !== undefined ? " autofocus" : ""}></div>`,
    `<small class="hint">${t("form.password_hint", { min: p.minLength })}</small>`,
    `<input type="hidden" name="token" value="${esc(p.token)}">`,
    p.app && p.appId ? `<input type="hidden" name="app_id" value="${esc(p.appId)}">` : "",
    `<button type="submit">${t(p.resetFor !== undefined ? "form.submit_reset" : "form.submit")}</button>`,
    `</form>`,
  );
  // Prosody's register.html: title {site_name}, heading "Register on {site_name}".
  // Both are given to layout() as text (it escapes them): only the title is the site's own name.
  return layout(lang, p.siteName, parts.filter(Boolean).join("\n"), t("form.title", { site_name: p.siteName }));
}

export function renderSuccess(p: SuccessPage, { lang, t }: PageLanguage): string {
  const parts: string[] = [`<h2>${t("success.heading")}</h2>`];
  if (p.reset) parts.push(`<p>${t("success.reset")}</p>`);
  else parts.push(`<p>${t("success.ready", { site_name: esc(p.siteName) })}</p>`);
  parts.push(
    `<label for="jid">${t("success.jid")}</label>`,
    `<div class="field"><input type="text" id="jid" readonly value="${esc(p.jid)}"></div>`,
    `<p>${t("success.sign_in_text")}</p>`,
  );
  const app = p.app;
  if (app && !p.reset) {
    const name = esc(app.name);
    parts.push(`<h3>${t("success.step1", { app_name: name })}</h3>`);
    const buttons = (app.download?.buttons ?? []).filter((b) => b && safeUrl(b.url));
    if (buttons.length) {
      parts.push(
        `<p class="downloads">` +
          buttons
            .map((b) => {
              const label = b.image && safeUrl(b.image) ? `<img src="${esc(b.image)}" alt="${esc(b.alttext ?? b.text ?? app.name)}">` : b.text != null ? esc(b.text) : t("success.download", { app_name: name });
              return `<a href="${esc(b.url)}"${b.target ? ` target="${esc(b.target)}"` : ""} rel="noopener noreferrer">${label}</a>`;
            })
            .join(" ") +
          `</p>`,
      );
    } else if (safeUrl(app.link)) {
      parts.push(`<p><a href="${esc(app.link)}" rel="noopener noreferrer">${t("success.download", { app_name: name })}</a></p>`);
    } else {
      parts.push(`<p>${t("success.install", { app_name: name })}</p>`);
    }
    // A configured setup text is shown as configured, in every language.
    const setup = app.setup?.text != null ? esc(app.setup.text) : t("success.setup", { app_name: name });
    parts.push(`<h3>${t("success.step2")}</h3>`, `<p>${setup}</p>`);
  }
  if (p.webchatUrl && safeUrl(p.webchatUrl)) {
    parts.push(`<p><a class="button" href="${esc(p.webchatUrl)}" rel="noopener noreferrer">${t("success.webchat")}</a></p>`);
  }
  return layout(lang, p.siteName, parts.join("\n"));
}

/** `message` is text (escaped here). */
export function renderError(siteName: string, message: string, { lang, t }: PageLanguage): string {
  // Prosody's register_error.html: title and heading "Invite to {site_name}".
  return layout(lang, t("error.title", { site_name: siteName }), `<h2>${t("error.heading")}</h2>\n<div class="alert alert-danger" role="alert">${esc(message)}</div>`);
}
