/**
 * Who may read /metrics (Prosody 0.12's mod_http_openmetrics rules): a client address listed in
 * `openmetrics_allow_ips` (default the loopback addresses "::1" and "127.0.0.1"), or inside
 * `openmetrics_allow_cidr` (one network, e.g. "10.0.0.0/8" or "fd00::/8"). Anyone else: 403.
 */
import { BlockList, isIP } from "node:net";

export interface AccessRule {
  ips: Set<string>;
  cidr: BlockList | undefined;
}

/** Parses `openmetrics_allow_cidr`; a malformed value throws (a config error, said at load). */
export function parseCidr(text: string): BlockList {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) throw new Error(`openmetrics_allow_cidr: ${JSON.stringify(text)} is not an address or network (like "10.0.0.0/8")`);
  const max = family === 4 ? 32 : 128;
  const bits = slash < 0 ? max : Number(text.slice(slash + 1));
  if (!Number.isInteger(bits) || bits < 0 || bits > max || (slash >= 0 && !/^\d+$/.test(text.slice(slash + 1)))) {
    throw new Error(`openmetrics_allow_cidr: bad prefix length in ${JSON.stringify(text)} (0-${max})`);
  }
  const list = new BlockList();
  list.addSubnet(addr, bits, family === 4 ? "ipv4" : "ipv6");
  return list;
}

export function isPermitted(rule: AccessRule, ip: string | undefined): boolean {
  if (typeof ip !== "string" || ip === "") return false;
  if (rule.ips.has(ip)) return true;
  if (!rule.cidr) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  // BlockList matches an IPv4-mapped IPv6 address ("::ffff:10.1.2.3") against IPv4 networks itself.
  return rule.cidr.check(ip, family === 4 ? "ipv4" : "ipv6");
}
