/**
 * src/util/scram.ts against independent vectors: RFC 5802's SCRAM-SHA-1 example (user "user",
 * password "pencil", salt QSXCR+Q6sek8bf92, i = 4096) recomputed step by step with node:crypto
 * and checked against the proof and signature the RFC publishes; a cross-check with Python's
 * hashlib when python3 is available; Prosody's record shape (spec §6.3).
 */
import { spawnSync } from "node:child_process";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { isScramRecord, saslprep, scramKeys, scramRecord, scramSha1Record, verifyScramPassword } from "../../src/util/scram.js";
import { skip } from "../helpers/skip.js";

const RFC_SALT = Buffer.from("QSXCR+Q6sek8bf92", "base64");
const CLIENT_FIRST_BARE = "n=user,r=fyko+d2lbbFgONRv9qkxdawL";
const SERVER_FIRST = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
const CLIENT_FINAL_NO_PROOF = "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
const AUTH_MESSAGE = `${CLIENT_FIRST_BARE},${SERVER_FIRST},${CLIENT_FINAL_NO_PROOF}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("RFC 5802 example: each step by hand with node:crypto, then the RFC's ClientProof and ServerSignature", () => {
  // Hi() of RFC 5802 is PBKDF2 with HMAC-SHA-1 and one block.
  const salted = pbkdf2Sync("pencil", RFC_SALT, 4096, 20, "sha1");
  assert.is(salted.toString("hex"), "1d96ee3a529b5a5f9e47c01f229a2cb8a6e15f7d");
  const clientKey = createHmac("sha1", salted).update("Client Key").digest();
  assert.is(clientKey.toString("hex"), "e234c47bf6c36696dd6d852b99aaa2ba26555728");
  const storedKey = createHash("sha1").update(clientKey).digest();
  assert.is(storedKey.toString("hex"), "e9d94660c39d65c38fbad91c358f14da0eef2bd6");
  const serverKey = createHmac("sha1", salted).update("Server Key").digest();
  assert.is(serverKey.toString("hex"), "0fe09258b3ac852ba502cc62ba903eaacdbf7d31");

  // The RFC publishes only the wire values; they tie the keys above to the standard.
  const clientSignature = createHmac("sha1", storedKey).update(AUTH_MESSAGE).digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ clientSignature[i]!));
  assert.is(proof.toString("base64"), "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
  const serverSignature = createHmac("sha1", serverKey).update(AUTH_MESSAGE).digest();
  assert.is(serverSignature.toString("base64"), "rmF9pqV8S7suAoZWja4dJRkFsKQ=");

  const keys = scramKeys("pencil", RFC_SALT, 4096);
  assert.is(keys.saltedPassword.toString("hex"), salted.toString("hex"));
  assert.is(keys.clientKey.toString("hex"), clientKey.toString("hex"));
  assert.is(keys.storedKey.toString("hex"), storedKey.toString("hex"));
  assert.is(keys.serverKey.toString("hex"), serverKey.toString("hex"));
});

test("a UUID salt string is used as its ASCII bytes (not decoded), as Prosody does", async () => {
  const salt = "0854f628-ac39-4a25-ac01-fba8bf57af0d";
  const record = await scramSha1Record("correct horse battery", { salt, iterations: 10000 });
  const salted = pbkdf2Sync("correct horse battery", Buffer.from(salt, "ascii"), 10000, 20, "sha1");
  const storedKey = createHash("sha1").update(createHmac("sha1", salted).update("Client Key").digest()).digest("hex");
  const serverKey = createHmac("sha1", salted).update("Server Key").digest("hex");
  assert.equal(record, { salt, stored_key: storedKey, server_key: serverKey, iteration_count: 10000 });
});

test("cross-check with Python's hashlib/hmac (skipped without python3)", async (ctx) => {
  const salt = "99f02968-4963-42ba-814a-81ca2bb0c686";
  const password = "gööd pässword\u00a01"; // non-ASCII, and a no-break space SASLprep maps to " "
  const py = spawnSync(
    "python3",
    [
      "-c",
      `import hashlib,hmac,sys
p=sys.argv[1].encode("utf-8"); s=sys.argv[2].encode("ascii")
sp=hashlib.pbkdf2_hmac("sha1",p,s,10000,20)
print(hashlib.sha1(hmac.new(sp,b"Client Key","sha1").digest()).hexdigest(), hmac.new(sp,b"Server Key","sha1").hexdigest())`,
      password.replace("\u00a0", " "),
      salt,
    ],
    { encoding: "utf8" },
  );
  if (py.error) return skip(ctx, `python3 not available (${py.error.message})`);
  assert.is(py.status, 0, py.stderr);
  const [stored, server] = py.stdout.trim().split(" ");
  const record = await scramSha1Record(password, { salt });
  assert.is(record.stored_key, stored);
  assert.is(record.server_key, server);
});

test("a new record: fresh UUID salt, 10000 iterations, lower-case hex, Prosody's four fields", async () => {
  const a = await scramSha1Record("pencil");
  const b = await scramSha1Record("pencil");
  assert.equal(Object.keys(a).sort(), ["iteration_count", "salt", "server_key", "stored_key"]);
  assert.match(a.salt, UUID);
  assert.is.not(a.salt, b.salt);
  assert.is.not(a.stored_key, b.stored_key);
  assert.is(a.iteration_count, 10000);
  assert.match(a.stored_key, /^[0-9a-f]{40}$/);
  assert.match(a.server_key, /^[0-9a-f]{40}$/);
  assert.ok(isScramRecord(a));
  const sha256 = await scramRecord("pencil", { hash: "sha256", iterations: 4096 });
  assert.match(sha256.stored_key, /^[0-9a-f]{64}$/);
  assert.ok(await verifyScramPassword(sha256, "pencil", "sha256"));
  assert.not.ok(await verifyScramPassword(sha256, "pencil"), "a SHA-256 record is not a SHA-1 record");
});

test("verifyScramPassword: right/wrong passwords, SASLprep equivalence, plaintext records, junk", async () => {
  const rec = await scramSha1Record("I\u00ADX pencil", { iterations: 4096 });
  assert.ok(await verifyScramPassword(rec, "I\u00ADX pencil"));
  assert.ok(await verifyScramPassword(rec, "IX pencil"), "soft hyphen is mapped to nothing by SASLprep");
  assert.ok(await verifyScramPassword(rec, "IX\u2002pencil"), "non-ASCII space maps to U+0020");
  assert.not.ok(await verifyScramPassword(rec, "IX Pencil"));
  assert.not.ok(await verifyScramPassword(rec, ""));
  assert.not.ok(await verifyScramPassword(rec, "bad\u0007control"), "prohibited characters fail SASLprep");
  assert.ok(await verifyScramPassword({ password: "secret" }, "secret"));
  assert.not.ok(await verifyScramPassword({ password: "secret" }, "Secret"));
  assert.not.ok(await verifyScramPassword({ password: "" }, ""));
  for (const junk of [undefined, null, {}, "x", { ...rec, stored_key: "zz" }, { ...rec, iteration_count: "4096" }, { ...rec, salt: undefined }]) {
    assert.not.ok(await verifyScramPassword(junk, "I\u00ADX pencil"), JSON.stringify(junk));
  }
});

test("saslprep: mapping, prohibited input, and records refuse passwords that fail it", async () => {
  assert.is(saslprep("I\u00ADX"), "IX");
  assert.is(saslprep("\u2168"), "IX");
  assert.is(saslprep("user"), "user");
  assert.is(saslprep("\u0007"), undefined);
  try {
    await scramSha1Record("a\u0007b");
    assert.unreachable("should reject");
  } catch (err) {
    assert.match(String(err), /SASLprep/);
  }
});

test.run();
