/**
 * JSON APIs from route definitions, for plugins (exported from "prosody-ts/util"): each route's
 * method, path template, parameters, request body schema, responses and required scope are
 * declared once, and from them come both the request checks (compiled by ajv, JSON Schema
 * 2020-12) and the OpenAPI 3.1 document (openapi.ts). A handler only ever sees input that matched
 * its schemas; every failure is a JSON error with its own 4xx status, never a 500 for bad input.
 */
import type { HttpEvent } from "./types.js";
import { formdecode } from "../util/form.js";
import { createRequire } from "node:module";
import type Ajv2020Import from "ajv/dist/2020.js";
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";

type Ajv2020Class = typeof Ajv2020Import;
let ajv2020: Ajv2020Class | undefined;

/**
 * ajv, loaded by the first router made: every plugin imports "prosody-ts/util", and loading ajv
 * costs ~50 ms, which a prosodyctl process (issue 15) or a plugin without a JSON API never needs.
 * ajv is CommonJS, so require() loads it synchronously; its default export may come wrapped.
 */
function Ajv2020(): Ajv2020Class {
  if (!ajv2020) {
    const m = createRequire(import.meta.url)("ajv/dist/2020.js") as Ajv2020Class & { default?: Ajv2020Class };
    ajv2020 = m.default ?? m;
  }
  return ajv2020;
}

export type JsonSchema = Record<string, unknown>;
export type ApiMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
/** A permission name a route needs (what it means is the plugin's: e.g. an API key's scope). */
export type ApiScope = string;

export interface ApiResponseDef {
  description: string;
  schema?: JsonSchema;
  headers?: Record<string, { description: string; schema: JsonSchema }>;
}

/** What a handler answers: a status, a JSON body (or raw text) and extra headers. */
export interface ApiReply {
  status: number;
  json?: unknown;
  headers?: Record<string, string>;
}

export interface ApiInput<Auth> {
  params: Record<string, string>;
  query: Record<string, any>;
  body: any;
  auth: Auth;
  event: HttpEvent;
}

export interface ApiRoute<Auth = unknown> {
  method: ApiMethod;
  /** Below the app's base, OpenAPI style: "/invites/{id}". */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  /** The key scope the route needs; undefined: no key needed (the OpenAPI document itself). */
  scope?: ApiScope;
  /** A stricter scope some valid inputs need (e.g. "admin" to hand out roles), checked after validation. */
  scopeFor?: (input: Omit<ApiInput<Auth>, "auth">) => ApiScope | undefined;
  params?: Record<string, JsonSchema & { description?: string }>;
  query?: Record<string, JsonSchema & { description?: string }>;
  body?: { schema: JsonSchema; required: boolean };
  responses: Record<number, ApiResponseDef>;
  handler: (input: ApiInput<Auth>) => Promise<ApiReply> | ApiReply;
  /** Served but left out of the OpenAPI document (a catch-all for better errors). */
  hidden?: boolean;
}

/** The error body of every failure of these APIs: `error` is a condition name, `message` for people. */
export interface ApiErrorBody {
  error: string;
  message: string;
  /** For a request that failed validation: which field (dotted path), or the parameter's name. */
  field?: string;
}

export const API_ERROR_SCHEMA: JsonSchema = {
  type: "object",
  required: ["error", "message"],
  properties: {
    error: { type: "string", description: "Condition: bad-request, invalid-json, item-not-found, conflict, not-authorized, …" },
    message: { type: "string" },
    field: { type: "string", description: "The request field that failed validation." },
  },
};

export function apiError(status: number, error: string, message: string, field?: string): ApiReply {
  const json: ApiErrorBody = field === undefined ? { error, message } : { error, message, field };
  return { status, json };
}

interface Compiled<Auth> {
  def: ApiRoute<Auth>;
  /** Matches the path below the base; groups are the params in order. */
  pattern: RegExp;
  names: string[];
  params: ValidateFunction;
  query: ValidateFunction;
  body?: ValidateFunction;
}

function objectSchema(props: Record<string, JsonSchema> | undefined, required: string[]): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [k, v] of Object.entries(props ?? {})) {
    const { description: _d, ...rest } = v as JsonSchema & { description?: string };
    properties[k] = rest;
  }
  return { type: "object", properties, required };
}

/** The field an ajv error is about, as a dotted path ("groups.0"), or the missing/extra property. */
export function schemaErrorField(e: ErrorObject, prefix?: string): string | undefined {
  const path = e.instancePath.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  const extra = (e.params as { missingProperty?: string; additionalProperty?: string }).missingProperty ?? (e.params as { additionalProperty?: string }).additionalProperty;
  if (extra !== undefined) path.push(extra);
  const field = path.join(".");
  if (field === "") return prefix;
  return field;
}

function validationError(where: string, errors: ErrorObject[] | null | undefined): ApiReply {
  const e = errors?.[0];
  if (!e) return apiError(400, "bad-request", `Invalid ${where}.`);
  const field = schemaErrorField(e);
  const message = field ? `Invalid ${where} field "${field}": ${e.message ?? "invalid"}.` : `Invalid ${where}: ${e.message ?? "invalid"}.`;
  return apiError(400, "bad-request", message, field);
}

/** Whether a Content-Type is JSON: `application/json`, optionally with parameters (charset). */
function isJsonType(type: string | undefined): boolean {
  return typeof type === "string" && /^application\/json\s*(;.*)?$/i.test(type.trim());
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A request body as JSON, or the reason it is not (bad UTF-8, bad JSON, wrong content type). */
function parseBody(event: HttpEvent): { value: unknown } | { error: ApiReply } | undefined {
  const raw = event.request.rawBody;
  if (!raw || raw.length === 0) return undefined;
  if (!isJsonType(event.request.headers.content_type)) {
    return { error: apiError(400, "invalid-json", "The request body must be JSON (Content-Type: application/json).") };
  }
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    return { error: apiError(400, "invalid-json", "The request body is not valid UTF-8.") };
  }
  if (text.trim() === "") return undefined;
  try {
    return { value: JSON.parse(text) };
  } catch {
    return { error: apiError(400, "invalid-json", "The request body is not valid JSON.") };
  }
}

export interface ApiRouter<Auth> {
  /**
   * The reply for a request whose path below the app's base is `rest`: the route's handler's,
   * or a JSON error (404 no such path, 405 with Allow, 401/403 from `authorize`, 400 bad input).
   */
  dispatch(event: HttpEvent, rest: string): Promise<ApiReply>;
  /** dispatch() written to the event's response: a handler for `"GET /*"`-style wildcard routes. */
  serve(event: HttpEvent, rest?: string): Promise<string>;
  readonly routes: readonly ApiRoute<Auth>[];
}

export type ApiAuthorize<Auth> = (event: HttpEvent, scope: ApiScope) => Promise<{ ok: true; auth: Auth } | { ok: false; reply: ApiReply }>;
export type ApiAllows<Auth> = (auth: Auth, scope: ApiScope) => boolean;

/**
 * Compiles the definitions (throws at once on a bad schema or path: a programming error).
 * `authorize` runs for routes with a `scope`, before any validation; `allows` checks a route's
 * `scopeFor` after it. Routes are tried in order: put concrete paths before templated ones.
 */
export function createApiRouter<Auth>(routes: ApiRoute<Auth>[], authorize: ApiAuthorize<Auth>, allows: ApiAllows<Auth>): ApiRouter<Auth> {
  const Ajv = Ajv2020();
  const plain = new Ajv({ allErrors: false, strict: true });
  const coercing = new Ajv({ allErrors: false, strict: true, coerceTypes: true });
  const compiled: Compiled<Auth>[] = routes.map((def) => {
    const names: string[] = [];
    const source = def.path.replace(/[.*+?^${}()|[\]\\]/g, (c) => `\\${c}`).replace(/\\\{(\w+)\\\}/g, (_m, name: string) => {
      names.push(name);
      return "([^/]+)";
    });
    return {
      def,
      pattern: new RegExp(`^${source}$`),
      names,
      params: coercing.compile(objectSchema(def.params, names)),
      query: coercing.compile(objectSchema(def.query, [])),
      body: def.body ? plain.compile(def.body.schema) : undefined,
    };
  });

  async function dispatch(event: HttpEvent, rest: string): Promise<ApiReply> {
    const path = rest === "" || rest.startsWith("/") ? rest : `/${rest}`;
    const method = event.request.method === "HEAD" ? "GET" : event.request.method;
    let pathMatched = false;
    const allowed: string[] = [];
    for (const c of compiled) {
      const m = c.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      allowed.push(c.def.method);
      if (c.def.method !== method) continue;
      return run(c, m, event);
    }
    if (!pathMatched) return apiError(404, "item-not-found", "No such API endpoint.");
    return { ...apiError(405, "method-not-allowed", `Use ${allowed.join(", ")} here.`), headers: { allow: allowed.join(", ") } };
  }

  async function run(c: Compiled<Auth>, m: RegExpExecArray, event: HttpEvent): Promise<ApiReply> {
    let auth = undefined as Auth;
    if (c.def.scope !== undefined) {
      const r = await authorize(event, c.def.scope);
      if (!r.ok) return r.reply;
      auth = r.auth;
    }
    const params: Record<string, string> = {};
    // `rest` comes from the request's path, which the server has already percent-decoded: decoding
    // again would turn "%2541" into "A".
    for (let i = 0; i < c.names.length; i++) params[c.names[i]!] = m[i + 1]!;
    if (!c.params(params)) return validationError("path parameter", c.params.errors);
    const query: Record<string, any> = {};
    for (const [k, v] of formdecode(event.request.url.query)) query[k] = v;
    if (!c.query(query)) return validationError("query parameter", c.query.errors);
    let body: unknown;
    const parsed = parseBody(event);
    if (parsed && "error" in parsed) return parsed.error;
    body = parsed?.value;
    if (c.def.body) {
      if (body === undefined) {
        if (c.def.body.required) return apiError(400, "bad-request", "A JSON request body is required.");
      } else if (!c.body!(body)) {
        return validationError("request body", c.body!.errors);
      }
    } else if (body !== undefined) {
      return apiError(400, "bad-request", "This endpoint takes no request body.");
    }
    const input = { params, query, body, event };
    const stricter = c.def.scopeFor?.(input);
    if (stricter !== undefined && c.def.scope !== undefined && !allows(auth, stricter)) {
      return apiError(403, "insufficient-scope", `This request needs an API key with the "${stricter}" scope.`);
    }
    return c.def.handler({ ...input, auth });
  }

  async function serve(event: HttpEvent, rest?: string): Promise<string> {
    const reply = await dispatch(event, rest ?? "");
    const { response } = event;
    response.statusCode = reply.status;
    response.headers.content_type = "application/json";
    for (const [k, v] of Object.entries(reply.headers ?? {})) response.headers[k] = v;
    return JSON.stringify(reply.json ?? {});
  }

  return { dispatch, serve, routes };
}
