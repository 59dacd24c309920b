/**
 * The pages of the register form, written for this host (self-contained HTML, no external
 * stylesheets or scripts). Every interpolated value goes through esc(). The password is never
 * written into any page.
 */

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
function layout(title: string, body: string, heading = title): string {
  return `<!DOCTYPE html>
<html lang="en">
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

export function renderForm(p: FormPage): string {
  const parts: string[] = [];
  const appName = p.app ? esc(p.app.name) : undefined;
  if (p.resetFor !== undefined) {
    parts.push(`<h2>Reset your password</h2>`, `<p>Choose a new password for <strong>${esc(`${p.resetFor}@${p.domain}`)}</strong>.</p>`);
  } else {
    parts.push(
      `<p>${esc(p.siteName)} is a chat service on the XMPP network. Pick a username and a password to get your own address${appName ? `, then use it in ${appName}` : ""}.</p>`,
    );
    if (p.app?.supports_preauth_uri) {
      parts.push(
        `<div class="alert alert-info"><p>Is ${appName} already installed on this device? It can create the account for you:</p>` +
          `<a class="button" href="${esc(p.uri)}">Open ${appName}</a></div>`,
      );
    }
    parts.push(`<h2>Create an account</h2>`);
  }
  if (p.message) parts.push(`<div class="alert alert-warning" role="alert">${esc(p.message)}</div>`);

  const fixed = p.resetFor ?? p.fixedUsername;
  const userValue = fixed ?? p.username;
  parts.push(
    `<form method="post">`,
    `<label for="user">Username</label>`,
    `<div class="field"><input type="text" id="user" name="user" required minlength="1" maxlength="30" autocomplete="username" autocapitalize="none" spellcheck="false"${userValue ? ` value="${esc(userValue)}"` : ""}${fixed !== undefined ? " readonly" : " autofocus"}><span class="suffix">@${esc(p.domain)}</span></div>`,
    fixed !== undefined
      ? `<small class="hint">This invite is for this username only.</small>`
      : `<small class="hint">The part before the @ of your new chat address.</small>`,
    `<label for="password">${p.resetFor !== undefined ? "New password" : "Password"}</label>`,
    `<div class="field"><input type="password" id="password" name="password" required minlength="${esc(p.minLength)}" maxlength="1023" autocomplete="new-password"${fixed !== undefined ? " autofocus" : ""}></div>`,
    `<small class="hint">At least ${esc(p.minLength)} characters. Use a password you use nowhere else.</small>`,
    `<input type="hidden" name="token" value="${esc(p.token)}">`,
    p.app && p.appId ? `<input type="hidden" name="app_id" value="${esc(p.appId)}">` : "",
    `<button type="submit">${p.resetFor !== undefined ? "Set password" : "Create account"}</button>`,
    `</form>`,
  );
  // Prosody's register.html: title {site_name}, heading "Register on {site_name}".
  return layout(p.siteName, parts.filter(Boolean).join("\n"), `Register on ${p.siteName}`);
}

export function renderSuccess(p: SuccessPage): string {
  const parts: string[] = [`<h2>Congratulations!</h2>`];
  if (p.reset) parts.push(`<p>The password of your account has been changed.</p>`);
  else parts.push(`<p>Your account on ${esc(p.siteName)} is ready.</p>`);
  parts.push(
    `<label for="jid">Your chat address (JID)</label>`,
    `<div class="field"><input type="text" id="jid" readonly value="${esc(p.jid)}"></div>`,
    `<p>Sign in with this address and the password you just chose. The server keeps only a hash of it: it cannot be shown again, so keep it somewhere safe.</p>`,
  );
  const app = p.app;
  if (app && !p.reset) {
    const name = esc(app.name);
    parts.push(`<h3>1. Get ${name}</h3>`);
    const buttons = (app.download?.buttons ?? []).filter((b) => b && safeUrl(b.url));
    if (buttons.length) {
      parts.push(
        `<p class="downloads">` +
          buttons
            .map((b) => {
              const label = b.image && safeUrl(b.image) ? `<img src="${esc(b.image)}" alt="${esc(b.alttext ?? b.text ?? app.name)}">` : esc(b.text ?? `Download ${app.name}`);
              return `<a href="${esc(b.url)}"${b.target ? ` target="${esc(b.target)}"` : ""} rel="noopener noreferrer">${label}</a>`;
            })
            .join(" ") +
          `</p>`,
      );
    } else if (safeUrl(app.link)) {
      parts.push(`<p><a href="${esc(app.link)}" rel="noopener noreferrer">Download ${name}</a></p>`);
    } else {
      parts.push(`<p>Install ${name} on your device.</p>`);
    }
    parts.push(`<h3>2. Sign in</h3>`, `<p>${esc(app.setup?.text ?? `Open ${app.name} and sign in with your chat address and password.`)}</p>`);
  }
  if (p.webchatUrl && safeUrl(p.webchatUrl)) {
    parts.push(`<p><a class="button" href="${esc(p.webchatUrl)}" rel="noopener noreferrer">Chat in your browser</a></p>`);
  }
  return layout(p.siteName, parts.join("\n"));
}

export function renderError(siteName: string, message: string): string {
  // Prosody's register_error.html: title and heading "Invite to {site_name}".
  return layout(`Invite to ${siteName}`, `<h2>Registration error</h2>\n<div class="alert alert-danger" role="alert">${esc(message)}</div>`);
}
