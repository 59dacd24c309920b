/**
 * How log lines name a secret (an invite token, which registers an account for whoever holds it):
 * enough of it to find the invite (`prosodyctl mod_invites list`, the store) and never enough to
 * use it. Log files are read by more people (group adm on Debian) than the data directory.
 * @example secretHint("Ab12Cd34Ef56Gh78Ij90Kl12") // "Ab12Cd…"
 */
export function secretHint(secret: string): string {
  return secret.length <= 8 ? "…" : `${secret.slice(0, 6)}…`;
}
