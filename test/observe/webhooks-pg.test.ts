/**
 * mod_invites_webhooks with three of our instances on one PostgreSQL database: the claims keep any
 * two from delivering the same event, so each arrives once (none lost).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { createRuntime } from "../../src/create-runtime.js";
import { makeConfig } from "../helpers/config.js";
import { postgresMissing, startCluster } from "../helpers/postgres.js";
import { skipIf } from "../helpers/skip.js";
import { startReceiver } from "../helpers/webhook-receiver.js";

const SECRET = "pg-webhook-secret-0123456789";
setLogLevel("error");

skipIf(test, postgresMissing() ?? false)("three instances on one PostgreSQL database: every event delivered, none twice", async () => {
  const cluster = await startCluster();
  const receiver = await startReceiver(SECRET);
  const runtimes: Runtime[] = [];
  try {
    const t = await cluster.createDatabase();
    for (let i = 0; i < 3; i++) {
      const rt = createRuntime({
        config: makeConfig(
          {
            data_path: mkdtempSync(join(tmpdir(), "webhooks-pg-")),
            storage: "sql",
            sql: { driver: "PostgreSQL", database: t.database, username: t.username, host: t.host, port: t.port },
            invites_webhooks: [{ url: receiver.url, events: ["invite-created"], secret: SECRET }],
            invites_webhooks_poll: 0.05,
          },
          { "example.com": { modules_enabled: ["invites", "invites_webhooks"] } },
        ),
        processType: "server",
      });
      await rt.start();
      runtimes.push(rt);
    }
    const made: string[] = [];
    for (let i = 0; i < 12; i++) {
      const invites = runtimes[i % 3]!.modules.get("example.com", "invites")!.exports as InvitesApi;
      made.push((await invites.createAccount())[0]!.token);
    }
    await receiver.until((ds) => new Set(ds.map((d) => d.id)).size === 12, 20_000, "twelve events");
    await new Promise((r) => setTimeout(r, 500)); // every worker has polled several times since
    assert.is(receiver.deliveries.length, 12, "no event delivered twice");
    assert.equal(receiver.deliveries.map((d) => d.body.data.invite.id).sort(), made.sort());
    assert.ok(receiver.deliveries.every((d) => d.signatureOk));
  } finally {
    for (const rt of runtimes) await rt.stop();
    await receiver.close();
    cluster.stop();
  }
});

test.run();
