/**
 * mod_invites_register_api: the JSON API an external web portal (Snikket's) uses to show an
 * invite and to register with it (prosody-modules' mod_invites_register_api, spec
 * invites-suite §9).
 *
 *   GET  /register_api/invite/<token>  200 { site_name, token, domain, uri, type[, inviter][, reset] } | 404
 *   POST /register_api/register        Content-Type: application/json
 *                                      { "username", "password", "token" } → 200 { "jid": "user@host" }
 *
 * Status codes are upstream's: 400 (no body, Content-Type not exactly application/json, bad JSON,
 * missing field, name nodeprep refuses), 404 (invite unknown, expired or used), 403 (a reset
 * invite used for another account, or `user-registering` refused), 409 (the username is taken).
 * Options: `site_name` (default the host); `register_api_rate_per_ip` (default "30/minute",
 * `false` = off: registrations per client address, 429 + Retry-After beyond it — a portal that
 * calls from one address for everyone needs a higher value, or to be in `trusted_proxies` and send
 * X-Forwarded-For). The portal, not this module, adds the CORS headers of
 * its invite view (`Access-Control-Allow-Origin: *`, `Access-Control-Expose-Headers: Link`), so
 * none are sent here, as upstream.
 *
 * Deliberate differences from prosody-modules, each tested:
 * - a password reset through the API spends its invite: the invite is claimed (taken out of the
 *   store) before the password changes, and `user-password-reset` gets the registration payload
 *   (`validated_invite` included), not the bare username upstream passes, which left reset links
 *   valid until they expired;
 * - one single-use invite registers one account however many requests or processes race: the
 *   invite is claimed atomically before the account is created (as mod_invites_register_web
 *   does); a claim that loses the race answers 404, as for any used invite. A failure after the
 *   claim puts the invite back;
 * - `user-registering` is fired for resets too (with `allow_reset`), so a policy module can refuse
 *   them (403); a username-bound invite (jid `u@host`) registers only u (else 403);
 * - a body that is not UTF-8, not a JSON object, or has fields of the wrong type is a 400 (Lua:
 *   500 for some); a token of the wrong type is a 400, a missing one a 404 (as upstream);
 *   a body over 16 KiB is refused before it is read (413); a reset of an account that no longer
 *   exists is a 403 (upstream: 500);
 * - storage failures answer 503 with Retry-After (upstream: 500), and every answer carries the
 *   no-store / no-referrer headers (the token is in the URL or the body).
 */
import type { HttpEvent, HttpResultObject, Module, ModuleExports } from "prosody-ts";
import { StorageError } from "prosody-ts";
import { PREP_MAX_BYTES, addressBucket, id, limitRequest, nodeprep, rateOption, RateLimiter, SECRET_PAGE_HEADERS, secretHint } from "prosody-ts/util";
import { readRegistration } from "./body.js";

type AuthProvider = ModuleExports["auth_internal_hashed"];

const JSON_TYPE = "application/json";
/** Three short strings: a username and a password of at most 1023 bytes each, and a token. */
const BODY_MAX_BYTES = 16 * 1024;

export default async function (module: Module): Promise<void> {
  const host = module.host;
  const invites = await module.depends("invites");
  const authName = module.getOptionString("authentication", "internal_hashed") ?? "internal_hashed";
  const auth = await module.depends<AuthProvider>(`auth_${authName}`);
  await module.depends("http");
  const siteName = () => module.getOptionString("site_name", host) ?? host;

  const json = (body: unknown): HttpResultObject => ({ statusCode: 200, headers: { content_type: JSON_TYPE }, body: JSON.stringify(body) });

  async function inviteInfo(_event: HttpEvent, token?: string): Promise<HttpResultObject | number> {
    if (!token) return 404;
    const [invite] = await invites.get(token);
    if (!invite) return 404;
    // Upstream reads fields the validated invite does not carry (`jid`), which Lua's JSON then
    // leaves out; absent fields are left out here too.
    const info: Record<string, unknown> = { site_name: siteName(), token: invite.token, domain: host, uri: invite.uri, type: invite.type };
    if (invite.inviter !== undefined) info.inviter = invite.inviter;
    const reset = invite.additional_data?.allow_reset;
    if (reset !== undefined && reset !== null) info.reset = reset;
    return json(info);
  }

  // One registration at a time per host: the checks and the account write must not interleave.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  const rate = rateOption(module, "register_api_rate_per_ip", "30/minute");
  const perAddress = rate ? new RateLimiter({ rate }) : undefined;

  async function register(event: HttpEvent): Promise<HttpResultObject | number> {
    const { request } = event;
    if (perAddress) {
      const headers: Record<string, string> = { content_type: JSON_TYPE };
      const refused = limitRequest(headers, [{ name: "address", limiter: perAddress, key: addressBucket(request.ip) }]);
      if (refused) {
        return { statusCode: 429, headers, body: JSON.stringify({ error: "rate-limited", message: "Too many registrations from this address: try again later.", retry_after: refused.retryAfter }) };
      }
    }
    if (request.headers.content_type !== JSON_TYPE) return 400; // COMPAT: upstream wants exactly this value
    const form = readRegistration(request.rawBody);
    if (typeof form === "number") return form;
    return serially(async () => {
      const [invite] = await invites.get(form.token);
      if (!invite) return 404;
      const { username: user, password } = form;
      if (user === "" || password === "") return 400;
      if (Buffer.byteLength(user, "utf8") > PREP_MAX_BYTES || Buffer.byteLength(password, "utf8") > PREP_MAX_BYTES) return 400;
      const username = nodeprep(user);
      if (!username) return 400;

      const resetFor = invite.resetUsername;
      if (resetFor !== undefined) {
        if (username !== resetFor) return 403;
        if (!(await auth.userExists(username))) return 403;
      } else {
        if (invite.boundUsername !== undefined && username !== invite.boundUsername) return 403;
        if (await auth.userExists(username)) return 409;
      }

      const registering: Record<string, unknown> = { validated_invite: invite, username, host, ip: request.ip, allowed: true };
      if (resetFor !== undefined) registering.allow_reset = resetFor;
      await module.fireEventAsync("user-registering", registering);
      if (registering.allowed === false) return 403;

      // Taken out of the store (atomically among our processes) BEFORE the account changes.
      let claimed: boolean;
      try {
        claimed = await invite.claim();
      } catch (err) {
        module.log("error", "Could not claim invite %s for %s@%s: %s", secretHint(invite.token), username, host, err instanceof Error ? err.message : err);
        throw new StorageError("the invite could not be claimed");
      }
      if (!claimed) return 404; // used a moment ago (by another request or process)

      const [ok, err] = resetFor !== undefined ? await auth.setPassword(username, password) : await auth.createUser(username, password, { ifAbsent: true });
      if (!ok) {
        // Nothing was spent: put the invite back (if that fails too, the invite is lost, never reused).
        await invite.unclaim().catch((e) => module.log("error", "Could not put back invite %s: %s", secretHint(invite.token), e instanceof Error ? e.message : e));
        if (err === "user-exists") return 409;
        if (err === "unable-to-save-data") throw new StorageError(`could not save the account ${username}@${host}`);
        if (err === "invalid-username" || err === "username-too-long" || err === "password fails SASLprep" || err === "no-password") return 400;
        if (err === "no-such-user") return 403;
        const errorId = id.short();
        module.log("error", "Registration of %s@%s failed (%s): %s", username, host, errorId, err);
        return 500;
      }

      const source = `mod_${module.name}`;
      const done = resetFor !== undefined
        ? module.fireEventAsync("user-password-reset", { ...registering, source })
        : module.fireEventAsync("user-registered", { username, host, source, validated_invite: invite, ip: request.ip });
      await done.catch((e) => module.log("debug", "A handler of the registration of %s@%s failed: %s", username, host, e instanceof Error ? e.message : e));
      if (resetFor !== undefined) module.log("info", "Password reset for %s@%s through the registration API", username, host);
      else module.log("info", "User account created: %s@%s (through the registration API)", username, host);
      return json({ jid: `${username}@${host}` });
    });
  }

  module.provides("http", {
    default_path: "register_api",
    route: {
      "GET /invite/*": inviteInfo,
      "POST /register": register,
    },
    max_content_size: BODY_MAX_BYTES,
    headers: SECRET_PAGE_HEADERS,
  });
}
