/** mod_http_openmetrics' access rule: exact addresses, one CIDR network, IPv4-mapped IPv6, bad CIDR text. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { isPermitted, parseCidr } from "../../plugins/mod_http_openmetrics/access.js";

test("allow_ips match exactly; the CIDR network matches its own family and IPv4-mapped addresses", () => {
  const v4 = { ips: new Set(["::1", "127.0.0.1"]), cidr: parseCidr("10.1.0.0/16") };
  assert.ok(isPermitted(v4, "127.0.0.1"));
  assert.ok(isPermitted(v4, "::1"));
  assert.ok(isPermitted(v4, "10.1.255.3"));
  assert.ok(isPermitted(v4, "::ffff:10.1.2.3"), "an IPv4-mapped address is its IPv4 address");
  assert.not.ok(isPermitted(v4, "10.2.0.1"));
  assert.not.ok(isPermitted(v4, "127.0.0.2"), "allow_ips is a list of addresses, not networks");
  assert.not.ok(isPermitted(v4, ""));
  assert.not.ok(isPermitted(v4, "not an address"));
  assert.not.ok(isPermitted(v4, undefined));
  const v6 = { ips: new Set<string>(), cidr: parseCidr("fd00::/8") };
  assert.ok(isPermitted(v6, "fd12:3456::1"));
  assert.not.ok(isPermitted(v6, "fe80::1"));
  assert.not.ok(isPermitted(v6, "10.0.0.1"));
  const single = { ips: new Set<string>(), cidr: parseCidr("192.0.2.7") };
  assert.ok(isPermitted(single, "192.0.2.7"), "an address without a prefix is that address");
  assert.not.ok(isPermitted(single, "192.0.2.8"));
});

test("a malformed openmetrics_allow_cidr is refused with its value named", () => {
  for (const bad of ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8x", "example.com/8", "::/129", ""]) {
    assert.throws(() => parseCidr(bad), /openmetrics_allow_cidr/, bad);
  }
});

test.run();
