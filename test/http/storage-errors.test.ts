/**
 * Issue #11 item 4: where a handler's error becomes a response. A storage failure (StorageError,
 * StorageUnavailableError — also from another copy of the class, as a plugin bundle may hold) is
 * 503 with Retry-After: the request changed nothing and may be tried again. Text the store cannot
 * hold (UnstorableTextError) is the client's: 400. Anything else stays 500.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StorageError, StorageUnavailableError } from "../../src/storage/types.js";
import { UnstorableTextError } from "../../src/storage/drivers/sql-pg.js";
import { startServer } from "./_helpers.js";

/** Same name, different class: what a plugin gets from its own copy of the module. */
class ForeignStorageError extends Error {
  override name = "StorageError";
}

test("storage errors thrown or rejected by a handler are 503 + Retry-After; other errors 500", async () => {
  const { server } = await startServer({ closeTimeoutMs: 200 });
  try {
    server.addHost("example.com");
    const route = (path: string, handler: () => unknown) => server.addRoute({ host: "example.com", method: "GET", path, handler: handler as never });
    route("/throws", () => {
      throw new StorageError("disk on fire");
    });
    route("/rejects", async () => {
      throw new StorageUnavailableError("database locked");
    });
    route("/foreign", async () => {
      throw new ForeignStorageError("from a plugin bundle");
    });
    route("/bug", async () => {
      throw new TypeError("get_all only supports non-empty string keys");
    });
    for (const path of ["/throws", "/rejects", "/foreign"]) {
      const r = await server.inject({ url: path, headers: { Host: "example.com" } });
      assert.is(r.statusCode, 503, path);
      assert.is(r.headers["Retry-After"], "5", path);
      assert.match(r.text(), "Service Unavailable");
      assert.not.match(r.text(), "disk on fire", "no details unless http_errors_detailed");
    }
    const bug = await server.inject({ url: "/bug", headers: { Host: "example.com" } });
    assert.is(bug.statusCode, 500);
    assert.is(bug.headers["Retry-After"], undefined);
  } finally {
    await server.close();
  }
});

test("text the store cannot hold (UnstorableTextError, also a foreign copy) is 400 without Retry-After", async () => {
  const { server } = await startServer({ closeTimeoutMs: 200 });
  try {
    server.addHost("example.com");
    const route = (path: string, handler: () => unknown) => server.addRoute({ host: "example.com", method: "GET", path, handler: handler as never });
    route("/nul", async () => {
      throw new UnstorableTextError("store: cannot store text containing U+0000");
    });
    route("/foreign-nul", () => {
      throw Object.assign(new Error("from a plugin bundle"), { name: "UnstorableTextError" });
    });
    for (const path of ["/nul", "/foreign-nul"]) {
      const r = await server.inject({ url: path, headers: { Host: "example.com" } });
      assert.is(r.statusCode, 400, path);
      assert.is(r.headers["Retry-After"], undefined, path);
      assert.not.match(r.text(), "U+0000", "no details unless http_errors_detailed");
    }
  } finally {
    await server.close();
  }
});

test.run();
