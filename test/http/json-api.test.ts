/**
 * The JSON API layer for plugins (src/http/json-api.ts, src/http/openapi.ts; exported from
 * "prosody-ts/util"): route matching, authorization before validation, ajv validation of path,
 * query and body with the failing field named, JSON errors for bad bodies, and the OpenAPI
 * document generated from the same definitions.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { apiError, createApiRouter, openApiDocument, schemaErrorField, type ApiRoute } from "../../src/util/index.js";
import type { HttpEvent } from "../../src/http/types.js";

interface Auth {
  who: string;
  scopes: string[];
}

function event(method: string, target: string, opts: { body?: string | Buffer; type?: string; auth?: string } = {}): HttpEvent {
  const [path, query] = target.split("?") as [string, string | undefined];
  const raw = opts.body === undefined ? Buffer.alloc(0) : Buffer.from(opts.body);
  const headers: Record<string, string> = {};
  if (opts.type) headers.content_type = opts.type;
  if (opts.auth) headers.authorization = opts.auth;
  const response = { statusCode: 200, headers: {} as Record<string, string>, send() {}, sent: false };
  return {
    request: { method, path, url: { path, query }, httpVersion: "1.1", headers, body: raw.toString("utf8"), rawBody: raw, ip: "127.0.0.1", secure: false },
    response,
  };
}

const calls: string[] = [];
const routes: ApiRoute<Auth>[] = [
  {
    method: "GET",
    path: "/things",
    operationId: "list",
    summary: "List",
    scope: "read",
    query: { limit: { type: "integer", minimum: 1, maximum: 10, description: "Page size." }, all: { type: "boolean" } },
    responses: { 200: { description: "ok", schema: { type: "array" } } },
    handler: ({ query }) => ({ status: 200, json: [query.limit ?? null, query.all ?? null] }),
  },
  {
    method: "GET",
    path: "/things/{n}",
    operationId: "one",
    summary: "One",
    scope: "read",
    params: { n: { type: "integer", minimum: 0 } },
    responses: { 200: { description: "ok" }, 404: { description: "none" } },
    handler: ({ params }) => (Number(params.n) === 7 ? { status: 200, json: { n: params.n } } : apiError(404, "item-not-found", "No.")),
  },
  {
    method: "POST",
    path: "/things",
    operationId: "make",
    summary: "Make",
    scope: "write",
    scopeFor: ({ body }) => (body?.power ? "admin" : undefined),
    body: { required: true, schema: { type: "object", required: ["name"], properties: { name: { type: "string", minLength: 1 }, tags: { type: "array", items: { type: "string" } }, power: { type: "boolean" }, deep: { type: "object", properties: { x: { type: "integer" } } } } } },
    responses: { 201: { description: "made" } },
    handler: ({ body, auth }) => {
      calls.push(body.name);
      return { status: 201, json: { name: body.name, by: auth.who }, headers: { location: `/things/${body.name}` } };
    },
  },
  { method: "POST", path: "/ping", operationId: "ping", summary: "Ping", responses: { 200: { description: "pong" } }, handler: () => ({ status: 200, json: "pong" }) },
  { method: "GET", path: "/secret-catchall/{x}", operationId: "hidden", summary: "Hidden", hidden: true, params: { x: { type: "string" } }, responses: {}, handler: ({ params }) => ({ status: 418, json: params.x }) },
];

const authorizeCalls: string[] = [];
const router = createApiRouter<Auth>(
  routes,
  async (ev, scope) => {
    authorizeCalls.push(scope);
    const a = ev.request.headers.authorization;
    if (!a) return { ok: false, reply: { ...apiError(401, "not-authorized", "Who?"), headers: { www_authenticate: "Bearer" } } };
    const scopes = a.split(" ").slice(1);
    if (!scopes.includes(scope) && !scopes.includes("admin")) return { ok: false, reply: apiError(403, "insufficient-scope", "No.") };
    return { ok: true, auth: { who: "tester", scopes } };
  },
  (auth, scope) => auth.scopes.includes(scope),
);

const READ = "Bearer read";
const WRITE = "Bearer write";

test("routing: 404 for an unknown path, 405 with Allow for a known path, HEAD as GET", async () => {
  const none = await router.dispatch(event("GET", "/x"), "/nothing");
  assert.is(none.status, 404);
  assert.is((none.json as any).error, "item-not-found");
  const wrong = await router.dispatch(event("DELETE", "/x"), "/things");
  assert.is(wrong.status, 405);
  assert.is(wrong.headers?.allow, "GET, POST");
  assert.is((await router.dispatch(event("HEAD", "/x", { auth: READ }), "/things")).status, 200);
  assert.is((await router.dispatch(event("GET", "/x", { auth: READ }), "things")).status, 200, "rest without its leading slash");
});

test("path parameters arrive as the server decoded them, never decoded twice", async () => {
  for (const x of ["a%41", "%", "a b", "é"]) {
    const r = await router.dispatch(event("GET", "/x"), `/secret-catchall/${x}`);
    assert.is(r.status, 418);
    assert.is(r.json, x);
  }
});

test("authorization runs before validation, and only for routes with a scope", async () => {
  authorizeCalls.length = 0;
  const r = await router.dispatch(event("POST", "/x", { body: "{bad", type: "application/json" }), "/things");
  assert.is(r.status, 401, "an unauthenticated request learns nothing about its body");
  assert.is(r.headers?.www_authenticate, "Bearer");
  assert.is((await router.dispatch(event("POST", "/x", { auth: READ, body: "{}", type: "application/json" }), "/things")).status, 403);
  assert.equal(authorizeCalls, ["write", "write"]);
  assert.is((await router.dispatch(event("POST", "/x"), "/ping")).status, 200);
  assert.equal(authorizeCalls, ["write", "write"], "no authorize for an open route");
});

test("query and path parameters are coerced and validated, the field named", async () => {
  assert.equal((await router.dispatch(event("GET", "/x?limit=5&all=true", { auth: READ }), "/things")).json, [5, true]);
  for (const [q, field] of [["limit=11", "limit"], ["limit=abc", "limit"], ["all=maybe", "all"]] as const) {
    const r = await router.dispatch(event("GET", `/x?${q}`, { auth: READ }), "/things");
    assert.is(r.status, 400, q);
    assert.is((r.json as any).field, field);
  }
  assert.is((await router.dispatch(event("GET", "/x", { auth: READ }), "/things/7")).status, 200);
  assert.is((await router.dispatch(event("GET", "/x", { auth: READ }), "/things/8")).status, 404);
  const bad = await router.dispatch(event("GET", "/x", { auth: READ }), "/things/-1");
  assert.is(bad.status, 400);
  assert.is((bad.json as any).field, "n");
});

test("bodies: JSON only (charset allowed), valid UTF-8, required, validated with the field named", async () => {
  const post = (body: string | Buffer | undefined, type = "application/json") => router.dispatch(event("POST", "/x", { auth: WRITE, body, type }), "/things");
  const cases: Array<[string | Buffer | undefined, string, number, string, string?]> = [
    [undefined, "application/json", 400, "bad-request"],
    ["   ", "application/json", 400, "bad-request"],
    ["{nope", "application/json", 400, "invalid-json"],
    ['{"name":"a"}', "text/plain", 400, "invalid-json"],
    [Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), "application/json", 400, "invalid-json"],
    ["{}", "application/json", 400, "bad-request", "name"],
    ['{"name":""}', "application/json", 400, "bad-request", "name"],
    ['{"name":"a","tags":["x",3]}', "application/json", 400, "bad-request", "tags.1"],
    ['{"name":"a","deep":{"x":"y"}}', "application/json", 400, "bad-request", "deep.x"],
    ["[]", "application/json", 400, "bad-request"],
  ];
  for (const [body, type, status, error, field] of cases) {
    const r = await post(body, type);
    assert.is(r.status, status, String(body));
    assert.is((r.json as any).error, error, String(body));
    assert.is((r.json as any).field, field, String(body));
  }
  const ok = await post('{"name":"a"}', "Application/JSON; charset=utf-8");
  assert.is(ok.status, 201);
  assert.equal(ok.json, { name: "a", by: "tester" });
  const extra = await router.dispatch(event("POST", "/x", { body: "{}", type: "application/json" }), "/ping");
  assert.is(extra.status, 400, "a body where none is taken");
});

test("scopeFor: a stricter scope for some inputs, checked after validation", async () => {
  calls.length = 0;
  const r = await router.dispatch(event("POST", "/x", { auth: WRITE, body: '{"name":"p","power":true}', type: "application/json" }), "/things");
  assert.is(r.status, 403);
  assert.is((r.json as any).error, "insufficient-scope");
  assert.equal(calls, [], "the handler did not run");
  assert.is((await router.dispatch(event("POST", "/x", { auth: "Bearer write admin", body: '{"name":"p","power":true}', type: "application/json" }), "/things")).status, 201);
});

test("serve() writes status, JSON content type and headers", async () => {
  const ev = event("POST", "/x", { auth: WRITE, body: '{"name":"s"}', type: "application/json" });
  const body = await router.serve(ev, "/things");
  assert.is(ev.response.statusCode, 201);
  assert.is(ev.response.headers.content_type, "application/json");
  assert.is(ev.response.headers.location, "/things/s");
  assert.equal(JSON.parse(body), { name: "s", by: "tester" });
});

test("a bad schema or an unknown keyword fails at creation, not per request", () => {
  const broken = { ...routes[3]!, body: { required: true, schema: { type: "object", propertiez: {} } } } as ApiRoute<Auth>;
  assert.throws(() => createApiRouter([broken], async () => ({ ok: true, auth: { who: "", scopes: [] } }), () => true));
});

test("schemaErrorField: nested paths, missing and extra properties", () => {
  const e = (instancePath: string, params: Record<string, unknown> = {}) => ({ instancePath, params, keyword: "x", schemaPath: "" }) as never;
  assert.is(schemaErrorField(e("/a/0/b")), "a.0.b");
  assert.is(schemaErrorField(e("/a", { missingProperty: "c" })), "a.c");
  assert.is(schemaErrorField(e("", { additionalProperty: "z" })), "z");
  assert.is(schemaErrorField(e("/x~1y")), "x/y");
  assert.is(schemaErrorField(e("")), undefined);
});

test("openApiDocument: paths under the prefix, parameters, bodies, standard errors, security, hidden left out", () => {
  const doc: any = openApiDocument(routes, {
    title: "T",
    version: "1",
    description: "D",
    server: "https://example.com",
    prefix: "/api",
    security: { name: "key", scheme: { type: "http", scheme: "bearer" }, describe: (s) => `scope ${s}` },
  });
  assert.equal(Object.keys(doc.paths).sort(), ["/api/ping", "/api/things", "/api/things/{n}"]);
  const list = doc.paths["/api/things"].get;
  assert.equal(list.parameters[0], { name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 10 }, description: "Page size." });
  assert.equal(list.security, [{ key: [] }]);
  assert.match(list.description, "scope read");
  assert.equal(Object.keys(list.responses).sort(), ["200", "400", "401", "403"]);
  assert.equal(doc.paths["/api/things/{n}"].get.parameters[0].required, true);
  assert.ok(doc.paths["/api/things/{n}"].get.responses["404"].content["application/json"].schema.properties.error);
  const make = doc.paths["/api/things"].post;
  assert.equal(make.requestBody.content["application/json"].schema, routes[2]!.body!.schema);
  assert.ok(make.responses["413"]);
  assert.equal(doc.paths["/api/ping"].post.security, []);
  assert.equal(doc.components.securitySchemes, { key: { type: "http", scheme: "bearer" } });
  const bare: any = openApiDocument(routes, { title: "T", version: "1", description: "D", server: "/", prefix: "", routerErrors: false });
  assert.equal(Object.keys(bare.paths["/things"].get.responses), ["200"]);
  assert.is(bare.components, undefined);
});

test.run();
