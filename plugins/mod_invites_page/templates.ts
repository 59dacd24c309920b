/**
 * The pages, in the util.interpolation template language (rendered with the HTML renderer), one
 * set per language: the texts come from locales/ (ICU messages whose arguments are put in as
 * template expressions, so `{site_name}` in a message becomes `{site_name}` here and is escaped
 * when the page is rendered).
 * Variables as in Prosody's pages: `site_name`, `token`, `uri`, `type`, `jid`, `inviter`,
 * `static`, `apps` (each with `proceed_url`), `app` on the setup page; ours in addition:
 * `qr_svg` (the invite's xmpp: URI as an inline SVG QR code), `base_url` and `lang_query`
 * (`&lang=xx` when the visitor chose the language with `lang`, else empty).
 * No inline scripts or styles, so a strict Content-Security-Policy can be used in front.
 */
import type { PageKey } from "./locales/index.js";

/** A message as template text; `args` adds or overrides argument values and tag functions. */
export type PageText = (key: PageKey, args?: Record<string, string | ((chunks: string[]) => string)>) => string;

/** What each message argument stands for in the templates. */
export const TEMPLATE_ARGS: Readonly<Record<string, string>> = {
  site_name: "{site_name}",
  inviter: "{inviter}",
  uri: "{uri}",
  app_name: "{app.name}",
  app_id: "{app_id}",
};

export interface PageTemplates {
  /** GET /invites_page?TOKEN with a valid token. */
  invite: string;
  /** GET /invites_page/setup/APP?TOKEN with a valid token and a known app. */
  setup: string;
  /** Any page with an unknown, expired or used token. */
  invalid: string;
  /** GET /invites_page/setup/APP?TOKEN with an app id this server does not list (404). */
  unknownApp: string;
}

/** The four page templates in `lang`, texts from `t`. */
export function pageTemplates(lang: string, t: PageText): PageTemplates {
  const head = `<!DOCTYPE html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">`;

  const qrPanel = `<aside class="qr-panel" id="qr-panel">
<h2><img src="{static}/qr-logo.png" alt="" width="20" height="20"> ${t("qr.heading")}</h2>
<p>${t("qr.text")}</p>
<div class="qr-code" role="img" aria-label="${t("qr.label")}">{qr_svg!}</div>
</aside>`;

  const intro = `<p>{inviter&${t("intro.by_inviter")}}{inviter~${t("intro.anonymous")}}
${t("intro.network")}</p>`;

  const appCardTop = `<img class="app-logo" src="{item.image|relurl}" alt="{item.imagetext?}">
<div class="app-info">
<h3 class="app-name">{item.name}</h3>
<p class="app-platforms">{item.platforms#<span class="platform-badge platform-badge-{item|lower|classname}">{item}</span>}</p>
<p class="app-text">{item.text?}</p>`;

  const invite = `${head}
<title>${t("page.title")}</title>
<link rel="alternate" href="{uri}">
<link rel="stylesheet" href="{static}/invite.css">
</head>
<body>
<main class="invite">
<header class="invite-header"><h1>${t("page.title")}</h1></header>
<div class="invite-body invite-layout">
<div class="invite-main">
${intro}
<h2>${t("invite.choose")}</h2>
<p>${t("invite.choose_text")}</p>
<p class="platform-note" id="platform-note" hidden>${t("invite.platform_note", { platform: (c) => `<span class="platform-name">${c.join("")}</span>`, all: (c) => `<a href="#" id="show-all-apps">${c.join("")}</a>` })}</p>
<ul class="app-list" id="app-list">
{apps#<li class="app-card{item.platforms# app-platform-{item|lower|classname}}">
${appCardTop}
<a class="button" href="{item.proceed_url?#}">{item.select_text?${t("invite.select")}}</a>
</div>
</li>
}</ul>
<h2>${t("invite.other")}</h2>
<p>${t("invite.other_text", { register: (c) => `<a href="register?t={token}{lang_query}">${c.join("")}</a>` })}</p>
</div>
${qrPanel}
</div>
</main>
<script src="{static}/platform.min.js"></script>
<script src="{static}/invite.js"></script>
</body>
</html>
`;

  const setup = `${head}
<title>${t("page.title")}</title>
<link rel="alternate" href="{uri}">
<link rel="stylesheet" href="{static}/invite.css">
</head>
<body>
<main class="invite">
<header class="invite-header"><h1>${t("setup.heading")}</h1></header>
<div class="invite-body invite-layout">
<div class="invite-main">
${intro}
<div class="app-card single{app.platforms# app-platform-{item|lower|classname}}">
<img class="app-logo" src="{app.image|relurl}" alt="{app.imagetext?}">
<div class="app-info">
<h3 class="app-name">{app.name}</h3>
<p class="app-platforms">{app.platforms#<span class="platform-badge platform-badge-{item|lower|classname}">{item}</span>}</p>
<p class="app-text">{app.text?}</p>
</div>
</div>
<h2>${t("setup.step1")}</h2>
<p>{app.download.text?${t("setup.download_text")}}</p>
<p class="download-buttons">{app.download.buttons#<a class="button" href="{item.url}" target="{item.target?_blank}" rel="noopener noreferrer">{item.image&<img src="{item.image}" alt="{item.alttext?${t("setup.download")}}">}{item.image~{item.text?${t("setup.download")}}}</a>}{app.download~{app.link&<a class="button" href="{app.link}" target="_blank" rel="noopener noreferrer">${t("setup.get")}</a>}}</p>
<h2>${t("setup.step2")}</h2>
<p>${t("setup.step2_text")}</p>
<p><a class="button" id="open-invite" href="{uri}">${t("setup.open")}</a></p>
<p>${t("setup.trouble")}</p>
</div>
${qrPanel}
</div>
</main>
<script src="{static}/platform.min.js"></script>
<script src="{static}/invite.js"></script>
</body>
</html>
`;

  const invalid = `${head}
<title>${t("page.title")}</title>
<link rel="stylesheet" href="{static}/invite.css">
</head>
<body>
<main class="invite">
<header class="invite-header"><h1>${t("page.title")}</h1></header>
<div class="invite-body">
<h2>${t("invalid.heading")}</h2>
<p>${t("invalid.sorry")}</p>
<p>${t("invalid.why")}</p>
<img class="illustration" src="{static}/illus-empty.svg" alt="${t("invalid.illustration")}">
</div>
</main>
</body>
</html>
`;

  const unknownApp = `${head}
<title>${t("page.title")}</title>
<link rel="stylesheet" href="{static}/invite.css">
</head>
<body>
<main class="invite">
<header class="invite-header"><h1>${t("unknown.heading")}</h1></header>
<div class="invite-body">
<p>${t("unknown.text")}</p>
<p>${t("unknown.back", { back: (c) => `<a href="{invite_page}">${c.join("")}</a>` })}</p>
</div>
</main>
</body>
</html>
`;

  return { invite, setup, invalid, unknownApp };
}
