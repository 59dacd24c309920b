/**
 * The register form and its result pages in English (ICU MessageFormat). Arguments are put in by
 * pages.ts (HTML-escaped there); `<strong>` is the only tag. No `<`, `>`, `&` or `"` elsewhere:
 * the texts go into HTML as they are. Every other language has exactly these keys, arguments and
 * tags (test/pages/translations.test.ts). The `error.*` texts are plain text (escaped whole).
 */
export const en = {
  "form.title": "Register on {site_name}",
  "form.reset_heading": "Reset your password",
  "form.reset_text": "Choose a new password for <strong>{jid}</strong>.",
  "form.intro": "{site_name} is a chat service on the XMPP network. Pick a username and a password to get your own address.",
  "form.intro_app": "{site_name} is a chat service on the XMPP network. Pick a username and a password to get your own address, then use it in {app_name}.",
  "form.preauth_text": "Is {app_name} already installed on this device? It can create the account for you:",
  "form.preauth_open": "Open {app_name}",
  "form.heading": "Create an account",
  "form.username": "Username",
  "form.username_fixed": "This invite is for this username only.",
  "form.username_hint": "The part before the @ of your new chat address.",
  "form.password": "Password",
  "form.new_password": "New password",
  "form.password_hint": "At least {min} characters. Use a password you use nowhere else.",
  "form.submit": "Create account",
  "form.submit_reset": "Set password",
  "success.heading": "Congratulations!",
  "success.reset": "The password of your account has been changed.",
  "success.ready": "Your account on {site_name} is ready.",
  "success.jid": "Your chat address (JID)",
  "success.sign_in_text": "Sign in with this address and the password you just chose. The server keeps only a hash of it: it cannot be shown again, so keep it somewhere safe.",
  "success.step1": "1. Get {app_name}",
  "success.download": "Download {app_name}",
  "success.install": "Install {app_name} on your device.",
  "success.step2": "2. Sign in",
  "success.setup": "Open {app_name} and sign in with your chat address and password.",
  "success.webchat": "Chat in your browser",
  "error.title": "Invite to {site_name}",
  "error.heading": "Registration error",
  "error.fill_in": "Please fill in all fields.",
  "error.username_too_long": "This username is too long.",
  "error.username_invalid": "This username contains invalid characters.",
  "error.reset_other": "This invite can only change the password of {jid}.",
  "error.no_account": "This account does not exist.",
  "error.bound": "This invite is for the username {username}.",
  "error.username_taken": "This username is already in use.",
  "error.password_too_long": "This password is too long (at most {max} bytes).",
  "error.password_short": "Password is too short (minimum {min} characters)",
  "error.password_username": "Password must not include your username",
  "error.no_password": "No password provided",
  "error.not_allowed": "Registration is not allowed.",
  "error.used": "This invite has already been used.",
  "error.unavailable": "Your account could not be created right now ({error_id}). Your invite has not been used: please try again in a moment.",
  "error.unknown": "An unknown error has occurred ({error_id})",
} as const;

export type RegisterKey = keyof typeof en;
