/**
 * The OpenAPI 3.1 documents served at /admin_api/openapi.json and /invites_api/openapi.json:
 * valid per a maintained OpenAPI validator (@seriousme/openapi-schema-validator), every schema in
 * them compiles as JSON Schema 2020-12, and they are the schemas the server validates with (a
 * limit read from the document is exactly where the server starts refusing).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import Ajv2020Import from "ajv/dist/2020.js";
import { Validator } from "@seriousme/openapi-schema-validator";
import { startHost, type Host } from "./_harness.js";

const Ajv2020 = ((Ajv2020Import as unknown as { default?: unknown }).default ?? Ajv2020Import) as typeof Ajv2020Import;

let h: Host;
let admin: string;
let adminDoc: any;
let invitesDoc: any;

test.before(async () => {
  h = await startHost([], 'http_paths = { http_admin_api = "/api/admin" }');
  admin = await h.key(["admin"]);
  const a = await h.req("GET", "/api/admin/openapi.json");
  assert.is(a.status, 200);
  adminDoc = a.json();
  const i = await h.req("GET", "/invites_api/openapi.json");
  assert.is(i.status, 200);
  assert.match(i.header("content-type") ?? "", /^application\/json/);
  invitesDoc = i.json();
});
test.after(() => h?.stop());

test("both documents are valid OpenAPI 3.1 (and the validator does reject a broken one)", async () => {
  for (const doc of [adminDoc, invitesDoc]) {
    const res = await new Validator().validate(structuredClone(doc));
    assert.ok(res.valid, JSON.stringify(res.errors));
    assert.is(doc.openapi, "3.1.0");
  }
  const broken = structuredClone(adminDoc);
  broken.paths["/api/admin/invites"].get.responses = "none";
  assert.not.ok((await new Validator().validate(broken)).valid);
});

test("every schema in the documents compiles as JSON Schema 2020-12", () => {
  const ajv = new Ajv2020({ strict: false });
  let n = 0;
  const walk = (v: any, key?: string) => {
    if (!v || typeof v !== "object") return;
    if (key === "schema") {
      ajv.compile(v);
      n++;
      return;
    }
    for (const [k, c] of Object.entries(v)) walk(c, k);
  };
  walk(adminDoc);
  walk(invitesDoc);
  assert.ok(n > 30, `${n} schemas`);
});

test("the admin document: every endpoint, under the configured path, keys required but for itself", () => {
  const ops = Object.entries(adminDoc.paths).flatMap(([p, o]: [string, any]) => Object.keys(o).map((m) => `${m.toUpperCase()} ${p}`));
  assert.equal(ops.sort(), [
    "DELETE /api/admin/invites/{id}",
    "GET /api/admin/invites",
    "GET /api/admin/invites/{id}",
    "GET /api/admin/openapi.json",
    "GET /api/admin/users/{username}/invited_by",
    "POST /api/admin/invites/account",
    "POST /api/admin/invites/group",
    "POST /api/admin/invites/reset",
    "POST /api/admin/invites/{id}/expire",
  ]);
  assert.match(adminDoc.servers[0].url, /^http:\/\/example\.com:\d+$/);
  assert.equal(adminDoc.paths["/api/admin/invites"].get.security, [{ apiKey: [] }]);
  assert.equal(adminDoc.paths["/api/admin/openapi.json"].get.security, []);
  assert.is(adminDoc.components.securitySchemes.apiKey.scheme, "bearer");
  assert.ok(adminDoc.paths["/api/admin/invites/{id}"].get.responses["401"]);
  assert.ok(adminDoc.paths["/api/admin/invites/{id}"].get.responses["403"]);
});

test("the document's request schemas are the ones enforced: limits read from it are exact", async () => {
  const props = adminDoc.paths["/api/admin/invites/account"].post.requestBody.content["application/json"].schema.properties;
  const send = (body: unknown) => h.req("POST", "/api/admin/invites/account", { key: admin, body: JSON.stringify(body) });
  for (const [field, ok, bad] of [
    ["ttl", props.ttl.maximum, props.ttl.maximum + 1],
    ["max_uses", props.max_uses.maximum, props.max_uses.maximum + 1],
    ["note", "n".repeat(props.note.maxLength), "n".repeat(props.note.maxLength + 1)],
    ["groups", Array(props.groups.maxItems).fill("g"), Array(props.groups.maxItems + 1).fill("g")],
  ] as const) {
    assert.is((await send({ [field]: ok })).status, 200, `${field} at the document's limit`);
    const r = await send({ [field]: bad });
    assert.is(r.status, 400, `${field} past the document's limit`);
    assert.is(r.json().field, field);
  }
  const limit = adminDoc.paths["/api/admin/invites"].get.parameters.find((p: any) => p.name === "limit").schema;
  assert.is((await h.req("GET", `/api/admin/invites?limit=${limit.maximum}`, { key: admin })).status, 200);
  const over = await h.req("GET", `/api/admin/invites?limit=${limit.maximum + 1}`, { key: admin });
  assert.is(over.status, 400);
  assert.is(over.json().field, "limit");
  const word = await h.req("GET", "/api/admin/invites?type=nope", { key: admin });
  assert.is(word.status, 400);
  assert.is(word.json().field, "type");
});

test("the invites_api document describes GET and POST of /invites_api, which answer as it says", async () => {
  assert.equal(Object.keys(invitesDoc.paths), ["/invites_api"]);
  assert.equal(Object.keys(invitesDoc.paths["/invites_api"]).sort(), ["get", "post"]);
  const create = await h.key(undefined);
  for (const method of ["GET", "POST"]) {
    const r = await h.req(method, "/invites_api", { key: create });
    const documented = invitesDoc.paths["/invites_api"][method.toLowerCase()].responses;
    assert.ok(documented[String(r.status)], `${method} → ${r.status} is documented`);
    assert.is(r.status, 201);
    assert.ok(documented["201"].headers.Location);
    assert.match(r.header("location") ?? "", /^xmpp:example\.com\?register;preauth=/);
  }
  const noKey = await h.req("GET", "/invites_api");
  assert.ok(invitesDoc.paths["/invites_api"].get.responses[String(noKey.status)]);
});

test.run();
