/**
 * The invite token store and its API (Prosody 0.12's mod_invites), for one host.
 * Records are exactly Prosody's (map store `invite_token`): a host-wide entry per token holding
 * the invite, and for contact invites a per-inviter entry token → expiry time.
 *
 * Consuming a single-use invite is a claim: its entries are taken out of the store atomically
 * (MapStore.take) before the account is created, so that of concurrent registrations (in any of
 * our processes) exactly one gets it; a failed registration puts them back (unclaim). Prosody
 * creates the account first and deletes the invite afterwards, so a failed delete leaves it usable.
 */
import type { KeyvalStore, MapStore, Module, StoreRecord, StoreValue } from "prosody-ts";
import { REMOVE } from "prosody-ts";
import { cachedPromise, id, nodeprep, now, secretHint } from "prosody-ts/util";

export interface Invite {
  type: "register" | "roster";
  jid: string;
  token: string;
  allow_registration: boolean;
  additional_data?: Record<string, any>;
  uri: string;
  created_at: number;
  expires: number;
  reusable?: true;
  landing_page?: string;
  [field: string]: unknown;
}

export type InviteError = "no-token" | "token-invalid" | "token-expired" | "internal-server-error";

/** What get() hands out (Prosody's validated invite), plus `jid` which Prosody hides. */
export interface ValidatedInvite {
  token: string;
  username?: string;
  inviter?: string;
  type: "register" | "roster";
  uri: string;
  additional_data?: Record<string, any>;
  reusable: boolean;
  /** The invite's JID: `user@host` for a username-bound or reset invite (our addition, gap #1). */
  jid?: string;
  /** A password-reset invite: the account whose password it resets (our addition). */
  resetUsername?: string;
  /** A `register` invite bound to one username: that username (our addition). */
  boundUsername?: string;
  /**
   * Takes the invite out of the store in one atomic step (MapStore.take), BEFORE the account is
   * created: true when this caller now holds it, false when it was already used or deleted (by
   * another request or process). Of concurrent claims of one single-use invite, exactly one
   * succeeds. A reusable invite is never consumed: true while it still exists.
   */
  claim(): Promise<boolean>;
  /** Puts a claimed invite back (account creation failed after the claim); no-op otherwise. */
  unclaim(): Promise<void>;
  /** Consumes the invite: claim() if not yet claimed (false: already used); true after a successful claim. */
  use(): Promise<boolean>;
}

export type Result<T> = [T, undefined] | [undefined, InviteError];

export interface InvitesApi {
  createAccount(username?: string | null, additionalData?: Record<string, any>, ttl?: number): Promise<Result<Invite>>;
  createAccountReset(username: string, ttl?: number): Promise<Result<Invite>>;
  createContact(username: string, allowRegistration: boolean, additionalData?: Record<string, any>, ttl?: number): Promise<Result<Invite>>;
  createGroup(groupIds: string[], additionalData?: Record<string, any>, ttl?: number): Promise<Result<Invite>>;
  get(token: string, username?: string): Promise<Result<ValidatedInvite>>;
  use(token: string): Promise<boolean>;
  pendingAccountInvites(): Promise<Array<[string, Invite]>>;
  getAccountInviteInfo(token: string): Promise<Result<Invite>>;
  deleteAccountInvite(token: string): Promise<Result<true>>;
  /** Deletes every expired entry (host-wide and per-inviter); returns how many. */
  purgeExpired(): Promise<number>;
}

/** The account a password-reset invite is for (`additional_data.allow_reset`), nodeprepped. */
function resetUsernameOf(additional: Record<string, any> | undefined): string | undefined {
  const u = additional?.allow_reset;
  return typeof u === "string" ? (nodeprep(u) ?? u) : undefined;
}

/** The username a `register` invite is bound to (its jid is `user@host`), nodeprepped. */
function boundUsernameOf(type: string, jid: string | undefined): string | undefined {
  if (type !== "register" || typeof jid !== "string") return undefined;
  const at = jid.indexOf("@");
  if (at <= 0) return undefined;
  const u = jid.slice(0, at);
  return nodeprep(u) ?? u;
}

/**
 * `additional_data.max_uses` of a reusable invite (our extension, set by mod_http_admin_api): how
 * many registrations it allows; `additional_data.uses` counts them. Undefined: unlimited.
 */
export function maxUsesOf(additional: Record<string, any> | undefined): number | undefined {
  const n = additional?.max_uses;
  return typeof n === "number" && Number.isInteger(n) && n >= 1 ? n : undefined;
}

/**
 * How long purgeExpired() keeps a record expired on purpose (`additional_data.revoked_at`, set by
 * mod_http_admin_api's expire), so that it can still be listed as expired.
 */
const REVOKED_KEEP_S = 30 * 86400;

/** Attempts of a counted claim to find a record another claim has taken out for a moment. */
const COUNT_ATTEMPTS = 100;

const DEFAULT_TTL = 86400 * 7;
const RESET_TTL = 86400;

function uriFor(action: string, jid: string, token: string, params: string): string {
  return `xmpp:${jid}?${action};preauth=${token}${params}`;
}

/** Drops undefined fields so the stored record has exactly Prosody's fields. */
function clean<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

/** Puts entries taken by a claim back, all of them even if one fails (then rejects with the first error). */
async function restore(map: MapStore, token: string, entries: Array<[string | null, StoreValue]>): Promise<void> {
  const results = await Promise.allSettled(entries.map(([user, value]) => map.set(user, token, value)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** The API for the host `module` acts for (its own host, or a context(host) in prosodyctl). */
export function createInvitesApi(module: Module): InvitesApi {
  const host = module.host;
  // Opened on first use; a failed open (storage unavailable for now) is retried by the next call.
  const open: () => Promise<{ map: MapStore; kv: KeyvalStore }> = cachedPromise(() =>
    Promise.all([module.openStore("invite_token", "map"), module.openStore("invite_token", "keyval")]).then(([map, kv]) => ({ map, kv })),
  );
  const defaultTtl = () => module.getOptionNumber("invite_expiry", DEFAULT_TTL) ?? DEFAULT_TTL;

  async function createInvite(
    action: "register" | "roster",
    jid: string,
    allowRegistration: boolean,
    additionalData: Record<string, any> | undefined,
    ttl: number | undefined,
    reusable: boolean,
  ): Promise<Result<Invite>> {
    const token = id.medium();
    const createdAt = now();
    const params = action === "roster" && allowRegistration ? ";ibr=y" : "";
    const invite: Invite = clean({
      type: action,
      jid,
      token,
      allow_registration: allowRegistration,
      additional_data: additionalData,
      uri: uriFor(action, jid, token, params),
      created_at: createdAt,
      expires: createdAt + (ttl ?? defaultTtl()),
      reusable: reusable ? (true as const) : undefined,
    });
    // Fired before the record is stored, so handlers can add fields (landing_page) that persist.
    module.fireEvent("invite-created", invite);
    const { map } = await open();
    try {
      if (allowRegistration) await map.set(null, token, clean(invite) as unknown as StoreRecord);
      if (action === "roster") {
        const inviter = jid.split("@")[0]!;
        await map.set(inviter, token, invite.expires);
      }
    } catch (err) {
      module.log("error", "Failed to store invite %s: %s", secretHint(token), err);
      return [undefined, "internal-server-error"];
    }
    // Once stored: handlers that keep their own record of it (metrics, a webhook outbox) are
    // awaited, so what they write is durable before the caller answers.
    await module.fireEventAsync("invite-stored", invite);
    return [invite, undefined];
  }

  const api: InvitesApi = {
    createAccount(username, additionalData, ttl) {
      const jid = username ? `${username}@${host}` : host;
      return createInvite("register", jid, true, additionalData, ttl, false);
    },

    createAccountReset(username, ttl = RESET_TTL) {
      return api.createAccount(username, { allow_reset: username }, ttl);
    },

    createContact(username, allowRegistration, additionalData, ttl) {
      return createInvite("roster", `${username}@${host}`, allowRegistration, additionalData, ttl, false);
    },

    createGroup(groupIds, additionalData, ttl) {
      const data: Record<string, any> = { groups: groupIds, ...(additionalData ?? {}) };
      return createInvite("register", host, true, data, ttl, ttl !== undefined);
    },

    async get(token, username) {
      if (typeof token !== "string" || token === "") return [undefined, "no-token"];
      const { map } = await open();
      const info = (await map.get(null, token)) as Invite | undefined;
      let validUntil: number | undefined;
      let inviter: string | undefined;
      if (username) {
        const v = await map.get(username, token);
        validUntil = typeof v === "number" ? v : undefined;
      } else if (info && typeof info === "object") {
        validUntil = typeof info.expires === "number" ? info.expires : undefined;
        if (info.type === "roster") username = inviter = info.jid.split("@")[0];
      }
      if (validUntil === undefined) return [undefined, "token-invalid"];
      if (now() > validUntil) return [undefined, "token-expired"];
      const reusable = info?.reusable === true;
      /** Entries this object took out of the store by claim(), to put back on unclaim(). */
      let taken: Array<[string | null, StoreValue]> | undefined;
      /** A claim in progress: a second claim() of this object waits for it rather than racing it. */
      let claiming: Promise<boolean> | undefined;
      /** A use counted by claim() on a reusable invite with max_uses, to give back on unclaim(). */
      let counted = false;
      const limit = reusable ? maxUsesOf(info?.additional_data) : undefined;
      const owner = username;
      const validated: ValidatedInvite = {
        token,
        username,
        inviter,
        type: info?.type ?? "roster",
        uri: info?.uri ?? uriFor("roster", `${username}@${host}`, token, ""),
        additional_data: info?.additional_data,
        reusable,
        jid: info?.jid,
        resetUsername: resetUsernameOf(info?.additional_data),
        boundUsername: boundUsernameOf(info?.type ?? "roster", info?.jid),
        claim() {
          if (taken || counted) return Promise.resolve(true);
          const p = (claiming ??= claimNow());
          const settled = () => {
            if (claiming === p) claiming = undefined;
          };
          p.then(settled, settled);
          return p;
        },
        async unclaim() {
          if (counted) {
            counted = false;
            await count((await open()).map, -1);
            return;
          }
          const entries = taken;
          if (!entries) return;
          taken = undefined;
          await restore((await open()).map, token, entries);
        },
        async use() {
          if ((reusable && limit === undefined) || taken || counted) return true;
          return validated.claim();
        },
      };
      /** One claim attempt (see ValidatedInvite.claim). */
      async function claimNow(): Promise<boolean> {
        const { map } = await open();
        if (reusable && limit !== undefined) return (counted = await count(map, 1));
        if (reusable) return (await map.get(null, token)) !== undefined;
        // The entry that validated the invite decides: the host-wide record, else (a contact
        // invite without registration) the inviter's entry.
        const got: Array<[string | null, StoreValue]> = [];
        if (info !== undefined) {
          const v = await map.take(null, token);
          if (v === undefined) return false;
          got.push([null, v]);
        }
        if (owner) {
          let v: StoreValue | undefined;
          try {
            v = await map.take(owner, token);
          } catch (err) {
            if (got.length) await restore(map, token, got);
            throw err;
          }
          if (v !== undefined) got.push([owner, v]);
          else if (info === undefined) return false;
        }
        taken = got;
        return true;
      }
      /**
       * Adds `delta` to the record's `additional_data.uses`, refusing (false) to go past its
       * max_uses. The record is taken out of the store while it changes (MapStore.take, atomic
       * among our processes), so concurrent counts never both see the same value; one that finds
       * it missing retries briefly (another count holds it) before concluding it was deleted.
       */
      async function count(map: MapStore, delta: 1 | -1): Promise<boolean> {
        for (let attempt = 0; attempt < COUNT_ATTEMPTS; attempt++) {
          const record = (await map.take(null, token)) as Invite | undefined;
          if (record === undefined) {
            await new Promise((r) => setTimeout(r, 2 + attempt % 8));
            continue;
          }
          const data = { ...(record.additional_data ?? {}) };
          const uses = typeof data.uses === "number" ? data.uses : 0;
          const max = maxUsesOf(data) ?? Infinity;
          const allowed = delta < 0 || (uses < max && !(now() > record.expires));
          if (allowed) data.uses = Math.max(0, uses + delta);
          await map.set(null, token, { ...record, additional_data: data } as unknown as StoreRecord);
          return allowed;
        }
        return false;
      }
      return [validated, undefined];
    },

    async use(token) {
      const [invite] = await api.get(token);
      return invite ? invite.use() : false;
    },

    async pendingAccountInvites() {
      const { kv } = await open();
      const all = (await kv.get(null)) ?? {};
      const t = now();
      return Object.entries(all).filter(
        (e): e is [string, any] => !!e[1] && typeof e[1] === "object" && typeof (e[1] as any).expires === "number" && (e[1] as any).expires > t,
      ) as Array<[string, Invite]>;
    },

    async getAccountInviteInfo(token) {
      if (typeof token !== "string" || token === "") return [undefined, "no-token"];
      const info = (await (await open()).map.get(null, token)) as Invite | undefined;
      if (!info || typeof info !== "object") return [undefined, "token-invalid"];
      if (now() > info.expires) return [undefined, "token-expired"];
      return [info, undefined];
    },

    async deleteAccountInvite(token) {
      if (typeof token !== "string" || token === "") return [undefined, "no-token"];
      await (await open()).map.set(null, token, undefined);
      return [true, undefined];
    },

    async purgeExpired() {
      const { map, kv } = await open();
      const t = now();
      let removed = 0;
      const expiredIn = (record: StoreRecord | undefined, expiry: (v: unknown) => number | undefined) => {
        const gone: Record<string, typeof REMOVE> = {};
        for (const [token, v] of Object.entries(record ?? {})) {
          const e = expiry(v);
          if (e !== undefined && t > e) gone[token] = REMOVE;
        }
        return gone;
      };
      const stored = await kv.get(null);
      const records = stored && !Array.isArray(stored) ? stored : {}; // a sequence holds no invites
      const hostWide = expiredIn(records, (v) => {
        if (!v || typeof v !== "object") return undefined;
        const revokedAt = (v as any).additional_data?.revoked_at;
        if (typeof revokedAt === "number" && t - revokedAt < REVOKED_KEEP_S) return undefined;
        return (v as any).expires as number;
      });
      if (Object.keys(hostWide).length) {
        await map.setKeys(null, hostWide);
        removed += Object.keys(hostWide).length;
        // One "invite-expired" per invite purged (metrics count them by type and source).
        for (const token of Object.keys(hostWide)) module.fireEvent("invite-expired", records[token]);
      }
      for (const user of await kv.users()) {
        if (user === "") continue;
        const userRecord = await kv.get(user);
        const gone = expiredIn(Array.isArray(userRecord) ? undefined : userRecord, (v) => (typeof v === "number" ? v : undefined));
        if (Object.keys(gone).length) {
          await map.setKeys(user, gone);
          removed += Object.keys(gone).length;
          // A contact invite without registration has only this entry.
          for (const token of Object.keys(gone)) {
            if (!(token in hostWide)) module.fireEvent("invite-expired", { type: "roster", jid: `${user}@${host}`, token });
          }
        }
      }
      return removed;
    },
  };
  return api;
}
