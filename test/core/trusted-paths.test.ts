/** checkTrustedPath: what a root-started process accepts to load code from (issue 11 item 5). */
import { chmodSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkTrustedPath, type TrustPolicy } from "../../src/core/trusted-paths.js";
import { skipIf } from "../helpers/skip.js";

// Ownership can only be given away by root.
const isRoot = process.getuid?.() === 0;
const rootTest = skipIf(test, !isRoot && "trusted-paths tests need root (they chown files to other users)");

const NOBODY = 65534;
const ROOT_ONLY: TrustPolicy = { uids: [0], gids: [0] };
const WITH_NOGROUP: TrustPolicy = { uids: [0, NOBODY], gids: [0, 65534] };

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), "prosody-ts-trusted-"));
  chmodSync(d, 0o755);
  return d;
}

rootTest("root-owned files in root-owned directories under sticky /tmp are trusted, as a tree too", () => {
  const d = dir();
  mkdirSync(join(d, "mod_x", "lib"), { recursive: true });
  writeFileSync(join(d, "mod_x", "lib", "a.js"), "");
  assert.is(checkTrustedPath(join(d, "mod_x"), ROOT_ONLY, { tree: true }), undefined);
  assert.is(checkTrustedPath(join(d, "mod_x", "lib", "a.js"), ROOT_ONLY), undefined);
});

rootTest("a sticky world-writable directory is fine on the way, not as the folder itself", () => {
  const d = dir();
  chmodSync(d, 0o1777);
  assert.is(checkTrustedPath(d, ROOT_ONLY), `${d} is writable by every user (mode 1777)`);
  writeFileSync(join(d, "f"), "");
  assert.is(checkTrustedPath(join(d, "f"), ROOT_ONLY), undefined);
});

rootTest("tree: a file deep inside, writable by a group other than a trusted one, is named", () => {
  const d = dir();
  mkdirSync(join(d, "a", "b"), { recursive: true });
  const f = join(d, "a", "b", "c.js");
  writeFileSync(f, "");
  chmodSync(f, 0o664);
  lchownSync(f, 0, 65534);
  assert.is(checkTrustedPath(d, ROOT_ONLY, { tree: true }), `${f} is writable by group nogroup (gid 65534) (mode 0664)`);
  assert.is(checkTrustedPath(d, ROOT_ONLY), undefined, "without tree only the folder itself");
  assert.is(checkTrustedPath(d, WITH_NOGROUP, { tree: true }), undefined, "the group we run as may write");
});

rootTest("symlinks are followed like the kernel does: relative targets with .., absolute targets, loops", () => {
  const d = dir();
  mkdirSync(join(d, "safe"));
  mkdirSync(join(d, "open"));
  chmodSync(join(d, "open"), 0o777);
  writeFileSync(join(d, "open", "c.lua"), "");
  writeFileSync(join(d, "safe", "c.lua"), "");
  symlinkSync("../open/c.lua", join(d, "safe", "rel.lua"));
  assert.is(checkTrustedPath(join(d, "safe", "rel.lua"), ROOT_ONLY), `${join(d, "open")} is writable by every user (mode 0777)`);
  symlinkSync(join(d, "safe", "c.lua"), join(d, "safe", "abs.lua"));
  assert.is(checkTrustedPath(join(d, "safe", "abs.lua"), ROOT_ONLY), undefined);
  symlinkSync("loop2", join(d, "safe", "loop1"));
  symlinkSync("loop1", join(d, "safe", "loop2"));
  assert.is(checkTrustedPath(join(d, "safe", "loop1"), ROOT_ONLY), `${join(d, "safe", "loop1")}: Too many levels of symbolic links`);
});

rootTest("links inside a folder back to itself or its parent do not loop; a link up to a world-writable place is refused", () => {
  const d = dir();
  mkdirSync(join(d, "mod_x"));
  symlinkSync(".", join(d, "mod_x", "self"));
  symlinkSync("..", join(d, "mod_x", "up"));
  assert.is(checkTrustedPath(join(d, "mod_x"), ROOT_ONLY, { tree: true }), undefined);
  const t = dir();
  mkdirSync(join(t, "mod_y"));
  symlinkSync("../..", join(t, "mod_y", "tmp"));
  assert.is(checkTrustedPath(join(t, "mod_y"), ROOT_ONLY, { tree: true }), `${tmpdir()} is writable by every user (mode 1777)`);
});

rootTest("a symlink inside a plugin folder pointing somewhere untrusted is refused", () => {
  const d = dir();
  mkdirSync(join(d, "mod_x"));
  const open = dir();
  chmodSync(open, 0o777);
  writeFileSync(join(open, "lib.js"), "");
  symlinkSync(join(open, "lib.js"), join(d, "mod_x", "lib.js"));
  assert.is(checkTrustedPath(join(d, "mod_x"), ROOT_ONLY, { tree: true }), `${open} is writable by every user (mode 0777)`);
});

rootTest("in sticky /tmp, an entry (even a symlink) owned by another user is refused: that user can replace it", () => {
  const d = dir();
  const link = join(tmpdir(), `prosody-ts-trusted-link-${process.pid}`);
  symlinkSync(d, link);
  lchownSync(link, NOBODY, 65534);
  try {
    assert.is(checkTrustedPath(link, ROOT_ONLY), `${link} is owned by nobody (uid 65534) in ${tmpdir()}, which every user can write to`);
  } finally {
    rmSync(link);
  }
});

rootTest("owned by another user; missing path", () => {
  const d = dir();
  lchownSync(d, NOBODY, 65534);
  assert.is(checkTrustedPath(d, ROOT_ONLY), `${d} is owned by nobody (uid 65534) in ${tmpdir()}, which every user can write to`);
  assert.is(checkTrustedPath(d, WITH_NOGROUP), undefined);
  const e = dir();
  mkdirSync(join(e, "sub"));
  lchownSync(join(e, "sub"), NOBODY, 65534);
  assert.is(checkTrustedPath(join(e, "sub"), ROOT_ONLY), `${join(e, "sub")} is owned by nobody (uid 65534), not by root (uid 0)`);
  assert.is(checkTrustedPath(join(e, "nope"), ROOT_ONLY), `cannot check ${join(e, "nope")}: No such file or directory`);
});

test.run();
