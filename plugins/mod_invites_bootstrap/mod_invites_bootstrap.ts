/**
 * mod_invites_bootstrap (Snikket, spec invites-suite §13.2): a one-time link that makes the first
 * admin's invite, so a deployment script can hand it out without a shell on the server.
 *
 *   GET /invites_bootstrap?token=<invites_bootstrap_secret>
 *     wrong or no secret                          403
 *     bootstrap `invites_bootstrap_index` done    303 to the link it made then (a replay)
 *     a newer bootstrap was done already          410
 *     else: an account invite { roles = { ["prosody:admin"] = true }, groups = { "default" },
 *           source = "api/token/bootstrap-<index>" } (ttl `invites_bootstrap_ttl`, else
 *           invite_expiry), recorded, and 303 to its landing page (else its xmpp: URI)
 *
 * Options: `invites_bootstrap_secret` (without it the module does nothing), `invites_bootstrap_index`
 * (a non-negative integer, raised for each new bootstrap; read as get_option_number does, as
 * Snikket's), `invites_bootstrap_ttl` (seconds); all read on each request. Ours:
 * `invites_bootstrap_rate_per_ip` (default "10/minute", `false` = off): requests per client
 * address with a secret set, 429 + Retry-After beyond it (the secret travels in a URL: slow guessing).
 * Keyval store `invites_bootstrap`, host record: the list of `{ index, timestamp, result }`,
 * oldest first, stored as Snikket's module stores it: a Lua sequence (a keyval record that is an
 * array), so Snikket's module, reading `#list` / `list[#list]` on a real Prosody sharing the data,
 * sees every bootstrap made here. Earlier versions of this module wrote the list with the string
 * keys `["1"]`, `["2"]`… (which Snikket's module sees as an empty list); such a list is still read,
 * and the next bootstrap rewrites it as a sequence.
 *
 * Deliberate differences from Snikket's module, each tested:
 * - a request without a query string is a 403 (Snikket: a Lua error, 500);
 * - without a usable `invites_bootstrap_index` the link answers 404 after the secret check and a
 *   warning is logged at load (Snikket: a Lua error when it compares or builds the source);
 * - requests are handled one at a time, so two at once make one invite (the second is a replay);
 * - a last stored entry this module cannot read answers 410 rather than making a new admin invite;
 * - if the record cannot be stored, the new invite is deleted again (Snikket keeps it, and the
 *   next request makes another);
 * - storage failures answer 503 with Retry-After (Snikket: 500), and every answer carries the
 *   no-store / no-referrer headers (the URL holds the secret, the Location an invite).
 */
import type { HttpEvent, HttpResultObject, KeyvalData, Module, StoreValue } from "prosody-ts";
import { StorageError } from "prosody-ts";
import { addressBucket, cachedPromise, formdecode, limitRequest, now, rateOption, RateLimiter, SECRET_PAGE_HEADERS } from "prosody-ts/util";
import { timingSafeEqual } from "node:crypto";

interface BootstrapRecord {
  index: number;
  timestamp: number;
  result: string;
}

export default async function (module: Module): Promise<void> {
  if (!module.getOptionString("invites_bootstrap_secret")) return;
  // Read on each request (a reloaded config applies at once); checked here to warn early.
  const currentIndex = (): number | undefined => {
    const n = module.getOptionNumber("invites_bootstrap_index");
    return n !== undefined && Number.isInteger(n) && n >= 0 ? n : undefined;
  };
  if (currentIndex() === undefined) {
    module.log("warn", "invites_bootstrap_index must be set to a non-negative integer; until then the bootstrap link answers 404");
  }
  const invites = await module.depends("invites");
  await module.depends("http");
  const store = cachedPromise(() => module.openStore("invites_bootstrap", "keyval"));

  const redirect = (location: string): HttpResultObject => ({ statusCode: 303, headers: { location } });

  async function bootstrap(): Promise<HttpResultObject | number> {
    const index = currentIndex();
    if (index === undefined) return 404;
    const kv = await store();
    const records = recordsOf(await kv.get(null));
    const last = records.at(-1);
    if (last !== undefined) {
      if (!isRecord(last)) return 410;
      if (index === last.index) return redirect(last.result);
      if (index < last.index) return 410;
    }
    const [invite, err] = await invites.createAccount(
      undefined,
      { roles: { "prosody:admin": true }, groups: ["default"], source: `api/token/bootstrap-${index}` },
      module.getOptionNumber("invites_bootstrap_ttl"),
    );
    if (!invite) {
      module.log("error", "Failed to create bootstrap invite! %s", err);
      throw new StorageError(`the bootstrap invite could not be stored (${err})`);
    }
    const result = invite.landing_page ?? invite.uri;
    const entry: BootstrapRecord = { index, timestamp: now(), result };
    try {
      await kv.set(null, [...records, entry as unknown as StoreValue]);
    } catch (e) {
      // Without the record the link could make a second admin invite: take this one back.
      await invites.deleteAccountInvite(invite.token).catch(() => undefined);
      module.log("error", "Failed to store bootstrap record: %s", e instanceof Error ? e.message : e);
      throw new StorageError("the bootstrap record could not be stored");
    }
    module.log("info", "Created the bootstrap invite for index %d", index);
    return redirect(result);
  }

  // One at a time: two requests at once must not make two admin invites.
  // Guesses at the secret are slowed per client address (`invites_bootstrap_rate_per_ip`).
  const rate = rateOption(module, "invites_bootstrap_rate_per_ip", "10/minute");
  const perAddress = rate ? new RateLimiter({ rate }) : undefined;

  let queue: Promise<unknown> = Promise.resolve();
  function handle(event: HttpEvent): Promise<HttpResultObject | number> | HttpResultObject | number {
    const secret = module.getOptionString("invites_bootstrap_secret");
    if (!secret) return 404; // removed from the config since load
    if (perAddress) {
      const headers: Record<string, string> = {};
      const refused = limitRequest(headers, [{ name: "address", limiter: perAddress, key: addressBucket(event.request.ip) }]);
      if (refused) return { statusCode: 429, headers, body: "Too many requests: try again later.\n" };
    }
    const given = formdecode(event.request.url.query ?? "").get("token");
    if (given === undefined || !sameSecret(given, secret)) return 403;
    const run = queue.then(bootstrap, bootstrap);
    queue = run.catch(() => undefined);
    return run;
  }

  module.provides("http", {
    route: { GET: handle },
    headers: SECRET_PAGE_HEADERS,
  });
}

// --- Internal helpers ---

/**
 * The stored list, oldest first: a sequence (as Snikket's module and this one write it), or a
 * record with the keys "1", "2"… (as earlier versions of this module wrote it).
 */
function recordsOf(stored: KeyvalData | undefined): StoreValue[] {
  if (Array.isArray(stored)) return stored;
  if (!stored) return [];
  return Object.keys(stored)
    .filter((k) => /^[1-9][0-9]*$/.test(k))
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => stored[k]!);
}

function isRecord(v: StoreValue): v is StoreValue & BootstrapRecord {
  return !!v && typeof v === "object" && !Array.isArray(v) && typeof v.index === "number" && typeof v.result === "string";
}

/** Compares without leaking the secret's length or prefix through timing. */
function sameSecret(given: string, secret: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}
