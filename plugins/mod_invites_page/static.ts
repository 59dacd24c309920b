/**
 * The files under /invites_page/static/: the pages' stylesheet and scripts, and two images.
 * All ours. `platform.min.js`, `qr-logo.png` and `illus-empty.svg` keep Prosody's file names so
 * that links to them keep working; Prosody's `qrcode.min.js` is not served (the QR code is drawn
 * on the server).
 */
import type { FileEntry } from "prosody-ts/util";

const CSS = `/* Invite pages: one column on phones, a card grid on wider screens. */
:root {
  --ink: #1d2430;
  --muted: #5a6472;
  --paper: #ffffff;
  --page: #eef1f5;
  --line: #d8dde4;
  --accent: #2563a8;
  --accent-ink: #ffffff;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root { --ink: #e6e9ee; --muted: #a3acb8; --paper: #1c2129; --page: #12161c; --line: #333b47; --accent: #5b9be0; --accent-ink: #0d1117; }
}
* { box-sizing: border-box; }
html { font: 17px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--page); }
body { margin: 0; padding: 2rem 1rem 3rem; }
main.invite { max-width: 62rem; margin: 0 auto; background: var(--paper); border: 1px solid var(--line); border-radius: 14px; overflow: hidden; }
.invite-header { padding: 1.4rem 1.6rem; border-bottom: 1px solid var(--line); }
.invite-header h1 { margin: 0; font-size: 1.7rem; line-height: 1.25; }
.invite-body { padding: 1.2rem 1.6rem 1.8rem; }
.invite-body h2 { font-size: 1.2rem; margin: 1.6rem 0 .4rem; }
.invite-layout { display: flex; gap: 1.6rem; align-items: flex-start; }
.invite-main { flex: 1; min-width: 0; }
.qr-panel { flex: 0 0 14rem; border: 1px solid var(--line); border-radius: 10px; padding: 1rem; text-align: center; font-size: .9rem; color: var(--muted); }
.qr-panel h2 { font-size: 1rem; margin: 0 0 .5rem; color: var(--ink); display: flex; gap: .4rem; align-items: center; justify-content: center; }
.qr-panel .qr-code { margin: .6rem auto 0; max-width: 12rem; background: #fff; border-radius: 6px; }
.qr-panel .qr-code svg { display: block; width: 100%; height: auto; }
@media (max-width: 44rem) { .invite-layout { flex-direction: column-reverse; } .qr-panel { flex-basis: auto; width: 100%; } }
.platform-note { background: var(--page); border-radius: 8px; padding: .5rem .8rem; }
.app-list { list-style: none; padding: 0; margin: 1rem 0; display: grid; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); gap: 1rem; }
.app-card { display: flex; gap: .9rem; border: 1px solid var(--line); border-radius: 10px; padding: 1rem; }
.app-card[hidden] { display: none; }
.app-card.single { max-width: 34rem; }
.app-logo { width: 4rem; height: 4rem; flex: none; border-radius: 12px; }
.app-info { display: flex; flex-direction: column; min-width: 0; flex: 1; }
.app-name { margin: 0; font-size: 1.1rem; }
.app-platforms { margin: .2rem 0 .4rem; }
.platform-badge { display: inline-block; font-size: .75rem; padding: .05rem .5rem; margin-right: .3rem; border-radius: 999px; background: var(--page); border: 1px solid var(--line); color: var(--muted); }
.app-text { margin: 0 0 .8rem; font-size: .92rem; color: var(--muted); }
.button { display: inline-block; margin-top: auto; align-self: flex-start; padding: .45rem 1.1rem; border-radius: 8px; background: var(--accent); color: var(--accent-ink); text-decoration: none; font-weight: 600; }
.button:hover, .button:focus { filter: brightness(1.1); }
.button img { display: block; max-height: 2.6rem; }
.download-buttons { display: flex; flex-wrap: wrap; gap: .6rem; }
.illustration { display: block; width: min(100%, 20rem); margin: 1.5rem auto; }
a { color: var(--accent); }
`;

const PLATFORM_JS = `/* Guesses the visitor's platform for the invite pages (window.invitePlatform.detect). */
(function (global) {
  "use strict";
  var RULES = [
    [/Windows Phone/i, "windows-phone", "Windows Phone"],
    [/Android/i, "android", "Android"],
    [/iPhone|iPad|iPod/i, "ios", "iOS"],
    [/Macintosh|Mac OS X/i, "macos", "macOS"],
    [/Windows/i, "windows", "Windows"],
    [/Haiku/i, "haiku", "Haiku"],
    [/CrOS/, "chromeos", "ChromeOS"],
    [/Linux|X11|BSD/i, "linux", "Linux"]
  ];
  function detect(nav) {
    var ua = (nav && nav.userAgent) || "";
    for (var i = 0; i < RULES.length; i++) {
      if (RULES[i][0].test(ua)) {
        var found = { id: RULES[i][1], name: RULES[i][2] };
        // iPadOS asks for desktop pages and says "Macintosh"; it has a touch screen.
        if (found.id === "macos" && nav.maxTouchPoints > 1) found = { id: "ios", name: "iOS" };
        return found;
      }
    }
    return null;
  }
  global.invitePlatform = { detect: detect, mobile: function (p) { return !!p && /^(android|ios|windows-phone)$/.test(p.id); } };
})(this);
`;

const INVITE_JS = `/* Invite page: list the apps for the visitor's platform first, hide the QR code on phones. */
(function () {
  "use strict";
  function start() {
    var helper = window.invitePlatform;
    if (!helper) return;
    var platform = helper.detect(window.navigator);
    var qr = document.getElementById("qr-panel");
    if (qr && helper.mobile(platform)) qr.hidden = true;
    var list = document.getElementById("app-list");
    var note = document.getElementById("platform-note");
    if (!platform || !list || !note) return;
    var cards = list.querySelectorAll(".app-card");
    var own = "app-platform-" + platform.id;
    var hide = [];
    for (var i = 0; i < cards.length; i++) {
      var c = cards[i].classList;
      if (!c.contains(own) && !c.contains("app-platform-web")) hide.push(cards[i]);
    }
    // Nothing for this platform (or everything is): keep the whole list.
    if (hide.length === 0 || hide.length === cards.length) return;
    for (var j = 0; j < hide.length; j++) hide[j].hidden = true;
    var name = note.querySelector(".platform-name");
    if (name) name.textContent = platform.name;
    note.hidden = false;
    var all = document.getElementById("show-all-apps");
    if (all) all.addEventListener("click", function (event) {
      event.preventDefault();
      for (var k = 0; k < hide.length; k++) hide[k].hidden = false;
      note.hidden = true;
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
`;

/** An open, empty cardboard box with a few dust specks. */
const EMPTY_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 220" role="img">
<title>An empty box</title>
<ellipse cx="160" cy="196" rx="118" ry="12" fill="#000" opacity=".08"/>
<path d="M70 92 L160 118 L160 196 L70 170 Z" fill="#c8955a"/>
<path d="M250 92 L160 118 L160 196 L250 170 Z" fill="#b07d45"/>
<path d="M70 92 L160 66 L250 92 L160 118 Z" fill="#6e4a24"/>
<path d="M70 92 L40 118 L130 144 L160 118 Z" fill="#d9a96d"/>
<path d="M250 92 L280 118 L190 144 L160 118 Z" fill="#c28c52"/>
<path d="M70 92 L58 52 L148 26 L160 66 Z" fill="#dcae74"/>
<path d="M250 92 L262 52 L172 26 L160 66 Z" fill="#c99657"/>
<circle cx="112" cy="36" r="3" fill="#9aa3ad"/><circle cx="206" cy="22" r="2.5" fill="#9aa3ad"/><circle cx="160" cy="12" r="2" fill="#9aa3ad"/>
</svg>
`;

/** 32×32 PNG: three QR finder squares and a few modules (drawn with mod_register_apps' png.ts). */
const QR_LOGO_PNG =
  "iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAYAAABzenr0AAAA20lEQVR42u1WwQ2DMBDLKjx4sCUjVFWHot2GLpDqUPkUdDk7puTBSZESwI5J7pykdMU3un4Yu37IhTYexhMALW3v+xqeDXCe3/k37BkqIMqzAVpMz1e+3R9Ls74FKiDKsws0wDq2vgtU8TBALzeqBESXriSA2gIkeTwBdBLC5aPiQQ3EqQKJoSXkT8+ybr0AhjSCCfNGPL80Pl0AcnBRS1wiaz452xXIGIi0ahgLlSac+jCiBcDHqCrJVDeiahNqQgCyBbK6Z28y6J5LyjD67jAj8ib5ixXXCGguPokfTvTwEroLAAAAAElFTkSuQmCC";

export function staticFiles(): Record<string, FileEntry> {
  const text = (body: string, type: string): FileEntry => ({ body: Buffer.from(body, "utf8"), type });
  return {
    "illus-empty.svg": text(EMPTY_SVG, "image/svg+xml"),
    "invite.css": text(CSS, "text/css"),
    "invite.js": text(INVITE_JS, "application/javascript"),
    "platform.min.js": text(PLATFORM_JS, "application/javascript"),
    "qr-logo.png": { body: Buffer.from(QR_LOGO_PNG, "base64"), type: "image/png" },
  };
}
