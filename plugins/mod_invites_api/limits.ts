/**
 * mod_invites_api's rate limits (token buckets, prosody-ts/util's RateLimiter), per host:
 *
 *   invites_api_rate = "100/minute"         -- per key, unless the key has its own (`create --rate`)
 *   invites_api_rate_per_ip = "300/minute"  -- per client address (IPv6: per /64), every request
 *
 * `false` turns one off. A bad value is logged and the default used. A key's bucket allows `limit`
 * at once, then `limit` per period: a leaked key with the defaults makes at most 200 invites in its
 * first minute and 100 a minute after. Buckets live in this process (several instances on one
 * database each allow the full rate) and are bounded (10000 addresses, idle ones dropped).
 */
import type { HttpEvent, HttpResultObject, Module } from "prosody-ts";
import { addressBucket, limitRequest, parseRate, rateOption, RateLimiter, type Rate, type RateCheck } from "prosody-ts/util";
import type { AuthResult } from "./authorize.js";

export const DEFAULT_KEY_RATE = "100/minute";
export const DEFAULT_ADDRESS_RATE = "300/minute";

export interface ApiLimits {
  check(event: HttpEvent, auth?: AuthResult): HttpResultObject | undefined;
}

export function apiLimits(module: Module): ApiLimits {
  const keyRate = rateOption(module, "invites_api_rate", DEFAULT_KEY_RATE);
  const addressRate = rateOption(module, "invites_api_rate_per_ip", DEFAULT_ADDRESS_RATE);
  // A key's own rate is read at every request; its parse is cached by its text.
  // Made even when the default is off: a key with its own rate is limited all the same.
  const perKey = new RateLimiter({ rate: keyRate ?? { limit: 1, period: 1 } });
  const perAddress = addressRate ? new RateLimiter({ rate: addressRate }) : undefined;
  const parsed = new Map<string, Rate | undefined>();
  const rateOf = (text: unknown): Rate | undefined => {
    if (typeof text !== "string") return undefined;
    if (!parsed.has(text)) {
      if (parsed.size >= 1000) parsed.clear();
      parsed.set(text, parseRate(text));
    }
    return parsed.get(text);
  };
  return {
    check(event, auth) {
      const checks: RateCheck[] = [];
      if (perAddress) checks.push({ name: "address", limiter: perAddress, key: addressBucket(event.request.ip) });
      if (auth?.ok) {
        const rate = rateOf(auth.key.rate) ?? keyRate;
        if (rate) checks.push({ name: "key", limiter: perKey, key: auth.keyId, rate });
      }
      if (checks.length === 0) return undefined;
      // A request without a valid key keeps Prosody's bare 403, without our headers, unless refused.
      const headers = auth?.ok ? event.response.headers : {};
      const refused = limitRequest(headers, checks);
      if (!refused) return undefined;
      module.log("debug", "Rate limited %s (%s): retry after %d s", auth?.ok ? `key ${auth.keyId}` : "a request", addressBucket(event.request.ip), refused.retryAfter);
      return {
        statusCode: 429,
        headers: { ...headers, content_type: "application/json" },
        body: JSON.stringify({ error: "rate-limited", message: "Too many requests: try again later.", retry_after: refused.retryAfter }),
      };
    },
  };
}
