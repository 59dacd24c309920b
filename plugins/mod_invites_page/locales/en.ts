/**
 * The invite pages' texts in English (ICU MessageFormat). Arguments: `site_name`, `inviter`,
 * `uri`, `app_name`, `app_id`; tags: `<strong>`, and `<platform>`, `<all>`, `<register>`, `<back>`
 * which the page turns into its own elements. No `<`, `>`, `&` or `"` elsewhere: the texts go
 * into HTML as they are. Every other language has exactly these keys, arguments and tags
 * (test/pages/translations.test.ts).
 */
export const en = {
  "page.title": "Invite to {site_name}",
  "intro.by_inviter": "<strong>{inviter}</strong> has invited you to chat on <strong>{site_name}</strong>.",
  "intro.anonymous": "You have been invited to chat on <strong>{site_name}</strong>.",
  "intro.network": "{site_name} is part of XMPP, an open and decentralised messaging network: your account here can talk to people on any XMPP service.",
  "qr.heading": "Continue on your phone",
  "qr.text": "Already have an XMPP app on your phone? Scan this code with it to accept the invite there.",
  "qr.label": "QR code of the invite {uri}",
  "invite.choose": "Choose an app",
  "invite.choose_text": "To get going, pick the app you want to use. It takes you through creating your account.",
  "invite.platform_note": "These are the apps for <platform>your device</platform>. You can also <all>view all apps</all>.",
  "invite.select": "Select",
  "invite.other": "Using another app?",
  "invite.other_text": "Any XMPP app works. If yours is not listed here, <register>register an account manually</register>, then sign in to your app with your new address and password.",
  "setup.heading": "Join {site_name} with {app_name}",
  "setup.step1": "Step 1: Install {app_name}",
  "setup.download_text": "Get {app_name} here, then come back to this page:",
  "setup.download": "Download {app_name}",
  "setup.get": "Get {app_name}",
  "setup.step2": "Step 2: Accept the invite",
  "setup.step2_text": "Once {app_name} is installed, open the invite with it. The app then helps you create your account on {site_name}.",
  "setup.open": "Open the invite in {app_name}",
  "setup.trouble": "Nothing happens? Make sure {app_name} is installed on this device, or scan the code with it from another device.",
  "invalid.heading": "Invite expired",
  "invalid.sorry": "Sorry, it looks like this invite code has expired!",
  "invalid.why": "It may have been used already, or it is older than its expiry time. Ask the person who invited you for a new one.",
  "invalid.illustration": "An empty box",
  "unknown.heading": "Unknown app",
  "unknown.text": "{site_name} does not list an app called “{app_id}”.",
  "unknown.back": "<back>Back to your invite</back> to choose one of the apps listed there.",
} as const;

export type PageKey = keyof typeof en;
