/**
 * migrator.cfg.lua, read as Prosody 0.12's prosody-migrator reads it: a Lua chunk run in an empty
 * environment where reading any global gives a function that records the table it is called with
 * under that name (`input { … }`, `output { … }`, `anything { … }`). Locals, string concatenation
 * and the rest of the language work; the standard library is not reachable, as in Prosody.
 *
 * Each named store is then checked: `type = "internal"` (`path`, default Prosody's data directory)
 * or `type = "sql"` (mod_storage_sql's options: `driver`, `database`, `username`, `password`,
 * `host`, `port`); the old names `prosody_files` / `prosody_sql` are accepted (COMPAT, as Prosody).
 * `hosts` maps a host to its list of stores (`"name"` or `"name-type"`). Without it every host and
 * store found in the input is migrated (Prosody 0.12 stops with a Lua error there).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { loadFengari } from "../core/config/_fengari.js";
import { convertOptions } from "../core/config/lua-sandbox.js";
import { describeFsError } from "../core/config/_shared.js";
import { sqlTarget, type SqlTarget } from "../storage/drivers/sql-database.js";

/** Prosody's data directory (CFG_DATADIR of Debian's build): relative paths are resolved from it. */
export const DEFAULT_DATA_PATH = "/var/lib/prosody";
/** Where prosody-migrator looks for its config without --config (CFG_CONFIGDIR/migrator.cfg.lua). */
export const DEFAULT_MIGRATOR_CONFIG = "/etc/prosody/migrator.cfg.lua";

export type StoreBackend = { type: "internal"; path: string } | { type: "sql"; target: SqlTarget };

export interface StoreConfig {
  name: string;
  backend: StoreBackend;
  /** host → store names (with an optional `-type` suffix); undefined: discover them in the input. */
  hosts?: Map<string, string[]>;
}

export interface MigratorConfig {
  file: string;
  /** The raw tables by name, in the order the config defined them. */
  raw: Map<string, unknown>;
}

/** A config that cannot be read or evaluated (`message` is one line, Prosody's "file:line: reason"). */
export class MigratorConfigError extends Error {
  override name = "MigratorConfigError";
}

/** Enough for any real config; stops an endless loop after about a second. */
const INSTRUCTION_LIMIT = 20_000_000;

// Runs the chunk (text, chunk name) in the recording environment; returns the tables and their order.
const RUNNER = `
local text, name, limit = ...
local found, order = {}, {}
local env = setmetatable({}, { __index = function(_, k)
  return function(tbl)
    if found[k] == nil then order[#order + 1] = k end
    found[k] = tbl
  end
end })
local chunk, err = load(text, "=" .. name, "t", env)
if not chunk then error(err, 0) end
debug.sethook(function() error(name .. ": the config takes too long to run", 0) end, "", limit)
local ok, e = pcall(chunk)
debug.sethook()
if not ok then error(tostring(e), 0) end
local names = {}
for i, k in ipairs(order) do if type(k) == "string" and found[k] ~= nil then names[#names + 1] = k end end
return found, names
`;

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Reads and runs the config file. Throws MigratorConfigError. */
export async function loadMigratorConfig(file: string): Promise<MigratorConfig> {
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (err) {
    throw new MigratorConfigError(`${file}: ${describeFsError(err)}`);
  }
  return evaluateMigratorConfig(text, file);
}

/** Runs config text as if read from `file`. Throws MigratorConfigError. */
export async function evaluateMigratorConfig(text: Uint8Array | string, file: string): Promise<MigratorConfig> {
  const f = await loadFengari();
  const { lua } = f;
  const L = f.lauxlib.luaL_newstate();
  f.lualib.luaL_openlibs(L);
  if (f.lauxlib.luaL_loadbuffer(L, f.to_luastring(RUNNER), null, "=migrator-config") !== lua.LUA_OK) {
    throw new Error(`internal error: ${decoder.decode(lua.lua_tolstring(L, -1))}`);
  }
  lua.lua_pushstring(L, typeof text === "string" ? f.to_luastring(text) : text);
  lua.lua_pushstring(L, f.to_luastring(file));
  lua.lua_pushinteger(L, INSTRUCTION_LIMIT);
  let status: number;
  try {
    status = lua.lua_pcall(L, 3, 2, 0);
  } catch (err) {
    throw new MigratorConfigError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (status !== lua.LUA_OK) {
    const raw = lua.lua_type(L, -1) === lua.LUA_TSTRING ? decoder.decode(lua.lua_tolstring(L, -1)) : "error while running the config";
    throw new MigratorConfigError(raw.replace(/\s*[\r\n]+\s*/g, " ").trim());
  }
  const tables = convertOptions(f, L, lua.lua_absindex(L, -2), { name: "migrator", file, warnings: [] });
  const raw = new Map<string, unknown>();
  const namesIdx = lua.lua_absindex(L, -1);
  for (let i = 1, n = lua.lua_rawlen(L, namesIdx); i <= n; i++) {
    lua.lua_rawgeti(L, namesIdx, i);
    const name = decoder.decode(lua.lua_tolstring(L, -1));
    lua.lua_pop(L, 1);
    if (Object.prototype.hasOwnProperty.call(tables, name)) raw.set(name, tables[name]);
  }
  return { file, raw };
}

/** The named store's settings, or an error line. */
export function storeConfig(config: MigratorConfig, name: string): StoreConfig | { error: string } {
  const t = config.raw.get(name);
  const bad = (why: string) => ({ error: `${config.file}: store '${name}': ${why}` });
  if (!t || typeof t !== "object" || Array.isArray(t)) return bad("must be a table, like " + name + ' { type = "internal" }');
  const o = t as Record<string, unknown>;
  let type = o.type;
  if (type === "prosody_files") type = "internal"; // COMPAT: Prosody's old names, as its migrator
  if (type === "prosody_sql") type = "sql";
  let backend: StoreBackend;
  if (type === "internal") {
    if (o.path !== undefined && typeof o.path !== "string") return bad("path must be a string");
    backend = { type, path: resolve(DEFAULT_DATA_PATH, typeof o.path === "string" ? o.path : DEFAULT_DATA_PATH) };
  } else if (type === "sql") {
    const target = sqlTarget(o, DEFAULT_DATA_PATH);
    if ("error" in target) return bad(target.error);
    backend = { type, target };
  } else {
    return bad(`type must be "internal" or "sql", not ${type === undefined ? "missing" : JSON.stringify(type)}`);
  }
  if (o.hosts === undefined) return { name, backend };
  if (!o.hosts || typeof o.hosts !== "object" || Array.isArray(o.hosts)) return bad('hosts must be a table { ["example.com"] = { "accounts", … } }');
  const hosts = new Map<string, string[]>();
  for (const [host, stores] of Object.entries(o.hosts as Record<string, unknown>)) {
    const list = Array.isArray(stores) ? stores : stores && typeof stores === "object" && Object.keys(stores).length === 0 ? [] : undefined;
    if (!list || !list.every((s): s is string => typeof s === "string" && s !== "")) {
      return bad(`hosts["${host}"] must be a list of store names`);
    }
    hosts.set(host, list);
  }
  return { name, backend, hosts };
}

/** A store of a host to migrate, and its type ("keyval", "archive", "pubsub"). */
export interface StoreEntry {
  store: string;
  type: string;
}

/** A `hosts` entry split as Prosody splits it: `name-type` (type: letters and digits) or `name` (keyval). */
export function splitStoreName(entry: string): StoreEntry {
  const m = /^(.*)-([A-Za-z0-9]+)$/.exec(entry);
  return m ? { store: m[1]!, type: m[2]! } : { store: entry, type: "keyval" };
}
