/**
 * The pages, in the util.interpolation template language (rendered with the HTML renderer).
 * Variables as in Prosody's pages: `site_name`, `token`, `uri`, `type`, `jid`, `inviter`,
 * `static`, `apps` (each with `proceed_url`), `app` on the setup page; ours in addition:
 * `qr_svg` (the invite's xmpp: URI as an inline SVG QR code) and `base_url`.
 * No inline scripts or styles, so a strict Content-Security-Policy can be used in front.
 */

const HEAD = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">`;

const QR_PANEL = `<aside class="qr-panel" id="qr-panel">
<h2><img src="{static}/qr-logo.png" alt="" width="20" height="20"> Continue on your phone</h2>
<p>Already have an XMPP app on your phone? Scan this code with it to accept the invite there.</p>
<div class="qr-code" role="img" aria-label="QR code of the invite {uri}">{qr_svg!}</div>
</aside>`;

const INTRO = `<p>{inviter&<strong>{inviter}</strong> has invited you}{inviter~You have been invited} to chat on <strong>{site_name}</strong>.
{site_name} is part of XMPP, an open and decentralised messaging network: your account here can talk to people on any XMPP service.</p>`;

const APP_CARD_TOP = `<img class="app-logo" src="{item.image|relurl}" alt="{item.imagetext?}">
<div class="app-info">
<h3 class="app-name">{item.name}</h3>
<p class="app-platforms">{item.platforms#<span class="platform-badge platform-badge-{item|lower|classname}">{item}</span>}</p>
<p class="app-text">{item.text?}</p>`;

/** GET /invites_page?TOKEN with a valid token. */
export const INVITE_PAGE = `${HEAD}
<title>Invite to {site_name}</title>
<link rel="alternate" href="{uri}">
<link rel="stylesheet" href="{static}/invite.css">
</head>
<body>
<main class="invite">
<header class="invite-header"><h1>Invite to {site_name}</h1></header>
<div class="invite-body invite-layout">
<div class="invite-main">
${INTRO}
<h2>Choose an app</h2>
<p>To get going, pick the app you want to use. It takes you through creating your account.</p>
<p class="platform-note" id="platform-note" hidden>These are the apps for <span class="platform-name">your device</span>. You can also <a href="#" id="show-all-apps">view all apps</a>.</p>
<ul class="app-list" id="app-list">
{apps#<li class="app-card{item.platforms# app-platform-{item|lower|classname}}">
${APP_CARD_TOP}
<a class="button" href="{item.proceed_url?#}">{item.select_text?Select}</a>
</div>
</li>
}</ul>
<h2>Using another app?</h2>
<p>Any XMPP app works. If yours is not listed here, <a href="register?t={token}">register an account manually</a>, then sign in to your app with your new address and password.</p>
</div>
${QR_PANEL}
</div>
</main>
<script src="{static}/platform.min.js"></script>
<script src="{static}/invite.js"></script>
</body>
</html>
`;

/** GET /invites_page/setup/APP?TOKEN with a valid token and a known app. */
export const SETUP_PAGE = `${HEAD}
<title>Invite to {site_name}</title>
<link rel="alternate" href="{uri}">
<link rel="stylesheet" href="{static}/invite.css">
</head>
<body>
<main class="invite">
<header class="invite-header"><h1>Join {site_name} with {app.name}</h1></header>
<div class="invite-body invite-layout">
<div class="invite-main">
${INTRO}
<div class="app-card single{app.platforms# app-platform-{item|lower|classname}}">
<img class="app-logo" src="{app.image|relurl}" alt="{app.imagetext?}">
<div class="app-info">
<h3 class="app-name">{app.name}</h3>
<p class="app-platforms">{app.platforms#<span class="platform-badge platform-badge-{item|lower|classname}">{item}</span>}</p>
<p class="app-text">{app.text?}</p>
</div>
</div>
<h2>Step 1: Install {app.name}</h2>
<p>{app.download.text?Get {app.name} here, then come back to this page:}</p>
<p class="download-buttons">{app.download.buttons#<a class="button" href="{item.url}" target="{item.target?_blank}" rel="noopener noreferrer">{item.image&<img src="{item.image}" alt="{item.alttext?Download {app.name}}">}{item.image~{item.text?Download {app.name}}}</a>}{app.download~{app.link&<a class="button" href="{app.link}" target="_blank" rel="noopener noreferrer">Get {app.name}</a>}}</p>
<h2>Step 2: Accept the invite</h2>
<p>Once {app.name} is installed, open the invite with it. The app then helps you create your account on {site_name}.</p>
<p><a class="button" id="open-invite" href="{uri}">Open the invite in {app.name}</a></p>
<p>Nothing happens? Make sure {app.name} is installed on this device, or scan the code with it from another device.</p>
</div>
${QR_PANEL}
</div>
</main>
<script src="{static}/platform.min.js"></script>
<script src="{static}/invite.js"></script>
</body>
</html>
`;

/** Any page with an unknown, expired or used token. */
export const INVALID_PAGE = `${HEAD}
<title>Invite to {site_name}</title>
<link rel="stylesheet" href="{static}/invite.css">
</head>
<body>
<main class="invite">
<header class="invite-header"><h1>Invite to {site_name}</h1></header>
<div class="invite-body">
<h2>Invite expired</h2>
<p>Sorry, it looks like this invite code has expired!</p>
<p>It may have been used already, or it is older than its expiry time. Ask the person who invited you for a new one.</p>
<img class="illustration" src="{static}/illus-empty.svg" alt="An empty box">
</div>
</main>
</body>
</html>
`;

/** GET /invites_page/setup/APP?TOKEN with an app id this server does not list (404). */
export const UNKNOWN_APP_PAGE = `${HEAD}
<title>Invite to {site_name}</title>
<link rel="stylesheet" href="{static}/invite.css">
</head>
<body>
<main class="invite">
<header class="invite-header"><h1>Unknown app</h1></header>
<div class="invite-body">
<p>{site_name} does not list an app called “{app_id}”.</p>
<p><a href="{invite_page}">Back to your invite</a> to choose one of the apps listed there.</p>
</div>
</main>
</body>
</html>
`;
