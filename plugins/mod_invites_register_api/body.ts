/**
 * The body of `POST /register_api/register`: a JSON object `{ username, password, token }`.
 * Everything a client can get wrong is a status code here (400), never an exception.
 */

export interface Registration {
  /** "" when absent or null: the handler answers 400 after the token check, as upstream. */
  username: string;
  password: string;
  /** "" when absent or null: no invite matches it (404), as upstream. */
  token: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The registration fields, or 400 (empty body, bad UTF-8, bad JSON, not an object, a field of the wrong type). */
export function readRegistration(raw: Buffer): Registration | 400 {
  if (raw.length === 0) return 400;
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(raw));
  } catch {
    return 400;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return 400;
  const fields = value as Record<string, unknown>;
  const out: Registration = { username: "", password: "", token: "" };
  for (const name of ["username", "password", "token"] as const) {
    const v = fields[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== "string") return 400;
    out[name] = v;
  }
  return out;
}
