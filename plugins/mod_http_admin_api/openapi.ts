/**
 * The OpenAPI 3.1 document of a set of route definitions (routing.ts): the same schemas that
 * validate requests describe them, so the document cannot drift from what the server accepts.
 */
import { ERROR_SCHEMA, type JsonSchema, type RouteDef } from "./routing.js";

export interface DocInfo {
  title: string;
  version: string;
  description: string;
  /** The server's URL (scheme, host, port); paths are given in full below it. */
  server: string;
  /** The app's base path, put before each route's path ("/admin_api"). */
  prefix: string;
  /** Add the 400/401/403/413 error answers every route of routing.ts's router may give. Default true. */
  routerErrors?: boolean;
}

const SCOPE_TEXT: Record<string, string> = {
  create: "an API key with the `create` (or `admin`) scope",
  read: "an API key with the `read` (or `admin`) scope",
  revoke: "an API key with the `revoke` (or `admin`) scope",
  admin: "an API key with the `admin` scope",
};

function stripDescription(s: JsonSchema & { description?: string }): { schema: JsonSchema; description?: string } {
  const { description, ...schema } = s;
  return description === undefined ? { schema } : { schema, description };
}

export function openApiDocument(routes: ReadonlyArray<Omit<RouteDef<any>, "handler">>, info: DocInfo): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  let secured = false;
  for (const r of routes) {
    if (r.hidden) continue;
    const parameters: unknown[] = [];
    for (const [name, s] of Object.entries(r.params ?? {})) {
      parameters.push({ name, in: "path", required: true, ...stripDescription(s) });
    }
    for (const [name, s] of Object.entries(r.query ?? {})) {
      parameters.push({ name, in: "query", required: false, ...stripDescription(s) });
    }
    const responses: Record<string, unknown> = {};
    for (const [code, res] of Object.entries(r.responses)) {
      const out: Record<string, unknown> = { description: res.description };
      const schema = res.schema ?? (Number(code) >= 400 && info.routerErrors !== false ? ERROR_SCHEMA : undefined);
      if (schema) out.content = { "application/json": { schema } };
      if (res.headers) out.headers = res.headers;
      responses[code] = out;
    }
    const errors: Array<[number, string]> = info.routerErrors === false ? [] : [[400, "The request did not match the schemas (field named in `field`), or bad JSON (`invalid-json`)."]];
    if (r.scope !== undefined && info.routerErrors !== false) {
      errors.push([401, "No API key, an unknown or malformed one, or an expired one (`WWW-Authenticate: Bearer`)."]);
      errors.push([403, "The key lacks the scope this request needs."]);
    }
    if (r.body && info.routerErrors !== false) errors.push([413, "The request body is too large."]);
    for (const [code, description] of errors) {
      responses[String(code)] ??= { description, content: { "application/json": { schema: ERROR_SCHEMA } } };
    }
    const op: Record<string, unknown> = {
      operationId: r.operationId,
      summary: r.summary,
      description: [r.description, r.scope ? `Needs ${SCOPE_TEXT[r.scope]}.` : "No API key needed."].filter(Boolean).join("\n\n"),
      parameters,
      responses,
    };
    if (r.body) op.requestBody = { required: r.body.required, content: { "application/json": { schema: r.body.schema } } };
    if (r.scope !== undefined) {
      op.security = [{ apiKey: [] }];
      secured = true;
    } else {
      op.security = [];
    }
    (paths[info.prefix + r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  const doc: Record<string, unknown> = {
    openapi: "3.1.0",
    info: { title: info.title, version: info.version, description: info.description },
    servers: [{ url: info.server }],
    paths,
  };
  if (secured) {
    doc.components = {
      securitySchemes: {
        apiKey: {
          type: "http",
          scheme: "bearer",
          description: "An API key `<id>/<secret>` made by `prosodyctl mod_invites_api create HOST NAME --scope …`.",
        },
      },
    };
  }
  return doc;
}
