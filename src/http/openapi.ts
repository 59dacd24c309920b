/**
 * The OpenAPI 3.1 document of a set of route definitions (json-api.ts): the same schemas that
 * validate requests describe them, so the document cannot drift from what the server accepts.
 */
import { API_ERROR_SCHEMA, type ApiRoute, type JsonSchema } from "./json-api.js";

export interface OpenApiInfo {
  title: string;
  version: string;
  description: string;
  /** The server's URL (scheme, host, port); paths are given in full below it. */
  server: string;
  /** The app's base path, put before each route's path ("/admin_api"). */
  prefix: string;
  /** Add the 400/401/403/413 error answers every route of createApiRouter may give. Default true. */
  routerErrors?: boolean;
  /**
   * How routes with a `scope` authenticate: the OpenAPI security scheme (put under
   * components.securitySchemes as `name`) and a sentence part per scope ("an API key with …").
   */
  security?: { name: string; scheme: Record<string, unknown>; describe(scope: string): string };
}

function stripDescription(s: JsonSchema & { description?: string }): { schema: JsonSchema; description?: string } {
  const { description, ...schema } = s;
  return description === undefined ? { schema } : { schema, description };
}

export function openApiDocument(routes: ReadonlyArray<Omit<ApiRoute<any>, "handler">>, info: OpenApiInfo): Record<string, unknown> {
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
      const schema = res.schema ?? (Number(code) >= 400 && info.routerErrors !== false ? API_ERROR_SCHEMA : undefined);
      if (schema) out.content = { "application/json": { schema } };
      if (res.headers) out.headers = res.headers;
      responses[code] = out;
    }
    const errors: Array<[number, string]> = info.routerErrors === false ? [] : [[400, "The request did not match the schemas (field named in `field`), or bad JSON (`invalid-json`)."]];
    if (r.scope !== undefined && info.routerErrors !== false) {
      errors.push([401, "Not authenticated (`WWW-Authenticate` says how)."]);
      errors.push([403, "Authenticated, but not allowed this request."]);
    }
    if (r.body && info.routerErrors !== false) errors.push([413, "The request body is too large."]);
    for (const [code, description] of errors) {
      responses[String(code)] ??= { description, content: { "application/json": { schema: API_ERROR_SCHEMA } } };
    }
    const op: Record<string, unknown> = {
      operationId: r.operationId,
      summary: r.summary,
      description: [r.description, r.scope === undefined ? "No authentication." : info.security ? `Needs ${info.security.describe(r.scope)}.` : undefined].filter(Boolean).join("\n\n"),
      parameters,
      responses,
    };
    if (r.body) op.requestBody = { required: r.body.required, content: { "application/json": { schema: r.body.schema } } };
    if (r.scope !== undefined && info.security) {
      op.security = [{ [info.security.name]: [] }];
      secured = true;
    } else if (info.security) {
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
  if (secured && info.security) doc.components = { securitySchemes: { [info.security.name]: info.security.scheme } };
  return doc;
}
