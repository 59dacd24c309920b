// Preloaded by run-tests.mjs (node --import): counts the assertions each test makes, so a test
// that asserts nothing is reported ("NO-ASSERT <suite> › <test>") and counted as failed.
// Test files import "uvu" and "uvu/assert" as usual; the hook hands them counting wrappers.
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
