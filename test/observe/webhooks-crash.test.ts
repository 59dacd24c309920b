/**
 * The webhook crash test: the host is killed (SIGKILL) while a delivery is in flight, restarted on
 * the same data, and every event reaches the receiver: exactly once each after deduplication by
 * event id, the interrupted one again with the same id, every signature valid.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl } from "../helpers/cli.js";
import { rawRequest } from "../helpers/http.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";
import { startReceiver } from "../helpers/webhook-receiver.js";

const SECRET = "crash-test-secret-0123456789";

test("kill -9 mid-delivery, restart: every event counted exactly once after dedup by id", async () => {
  const receiver = await startReceiver(SECRET);
  const data = mkdtempSync(join(tmpdir(), "webhooks-crash-"));
  const config = `
data_path = "${data}"
invites_webhooks = { { url = "${receiver.url}", events = { "invite-created", "invite-used", "user-registered" }, secret = "${SECRET}" } }
invites_webhooks_timeout = 1
invites_webhooks_retry_base = 0.1
invites_webhooks_poll = 0.2
VirtualHost "example.com"
modules_enabled = { "http", "invites", "invites_api", "invites_register", "invites_register_web", "invites_webhooks" }
`;
  let server: ServerProcess | undefined;
  try {
    // The first delivery is held unanswered; the host is killed while it waits for the answer.
    let heldId: string | undefined;
    receiver.answer = (d) => (heldId === undefined ? ((heldId = d.id), "hold") : 204);
    server = await startServerProcess(config);
    const key = (await prosodyctl(["--config", server.config, "mod_invites_api", "create", "example.com"], { cwd: server.dir })).stdout.trim();
    assert.match(key, /^\S+\/\S+$/);
    const tokens: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await rawRequest(server.port, `GET /invites_api?key=${encodeURIComponent(key)} HTTP/1.1\r\nHost: example.com\r\n\r\n`);
      assert.is(r.status, 201, r.body.toString());
      tokens.push(/preauth=([A-Za-z0-9_-]+)/.exec(r.header("location") ?? "")?.[1] ?? /\?([A-Za-z0-9_-]+)$/.exec(r.header("location") ?? "")![1]!);
    }
    await receiver.until(() => heldId !== undefined, 10_000, "the first delivery");
    server.child.kill("SIGKILL");
    assert.is(await server.exited, "SIGKILL");

    server = await startServerProcess(config);
    // Activity after the restart: a registration with one of the invites (invite-used, user-registered).
    const body = new URLSearchParams({ user: "crashy", password: "a long enough password", token: tokens[1]! }).toString();
    const reg = await rawRequest(server.port, `POST /register HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.is(reg.status, 200, reg.body.toString().slice(0, 300));

    const accepted = (ds: typeof receiver.deliveries) => new Set(ds.filter((d) => d.answered === 204).map((d) => d.id));
    await receiver.until((ds) => accepted(ds).size === 5, 20_000, "five events accepted");
    assert.equal(receiver.uniqueByEvent(), { "invite-created": 3, "invite-used": 1, "user-registered": 1 });
    assert.ok(receiver.deliveries.every((d) => d.signatureOk), "every signature verifies");
    const held = receiver.deliveries.filter((d) => d.id === heldId);
    assert.is(held.length, 2, "the interrupted delivery came again, with the same event id");
    assert.is(held[1]!.answered, 204);
    const invited = new Set(receiver.deliveries.filter((d) => d.event === "invite-created").map((d) => d.body.data.invite.id));
    assert.equal([...invited].sort(), [...tokens].sort(), "one invite-created per invite made");
  } finally {
    await server?.stop();
    await receiver.close();
  }
});

test.run();
