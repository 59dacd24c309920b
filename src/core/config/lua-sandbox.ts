/**
 * The general evaluation path: runs prosody.cfg.lua as Lua on fengari (a Lua 5.3 VM written in
 * JS, imported lazily because loading it costs tens of milliseconds), inside the sandbox
 * environment built by _prelude.ts.
 *
 * COMPAT: fengari is Lua 5.3 with 32-bit integers, Prosody runs Lua 5.4 with 64-bit ones:
 * integer arithmetic past 2^31 wraps here (`1024*1024*1024*4` gives 0; use a float operand or `^`),
 * and 5.4-only syntax (`<const>`, `<close>`) is a syntax error.
 */
import { ConfigError } from "./config-error.js";
import { loadFengari, type Fengari, type JsFunction, type LuaState } from "./_fengari.js";
import { PRELUDE } from "./_prelude.js";
import {
  makeObject, MAX_INCLUDE_DEPTH, nameprepHost, quote, readIncluded, resolveInclude,
  type RawResult,
} from "./_shared.js";
import type { ConfigSection, LoadOptions, OptionValue } from "./types.js";

/** Enough for any real config; stops an endless loop after about a second. */
const INSTRUCTION_LIMIT = 20_000_000;

// --- internal ---

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const FILE_TOKEN = /<(?:cfg|file):(\d+)>/g;
const POSITION = /^<cfg:(\d+)>:(\d+): /;

/** Evaluates `text` (the main file's bytes) in the sandbox. Throws ConfigError. */
export async function evaluateWithLua(text: Uint8Array, fileName: string, opts: LoadOptions = {}): Promise<RawResult> {
  const f = await loadFengari();
  const { lua } = f;
  const env = opts.env ?? process.env;
  const files = [fileName];
  const read = new Set([fileName]);
  const fileOf = (id: number) => files[id - 1] ?? fileName;
  const untoken = (msg: string) => msg.replace(FILE_TOKEN, (_, id: string) => fileOf(Number(id)));

  const L = f.lauxlib.luaL_newstate();
  f.lualib.luaL_openlibs(L);
  const str = (i: number) => decoder.decode(lua.lua_tolstring(L, i));
  const fail = (message: string) => {
    lua.lua_pushnil(L);
    lua.lua_pushstring(L, f.to_luastring(message));
    return 2;
  };

  const hostapi: Record<string, JsFunction> = {
    resolve: () => {
      const from = fileOf(lua.lua_tointeger(L, 1));
      const found = resolveInclude(from, str(2));
      if (!found.ok) return fail(found.error);
      lua.lua_createtable(L, found.value.length, 0);
      found.value.forEach((file, i) => {
        files.push(file);
        lua.lua_pushinteger(L, files.length);
        lua.lua_rawseti(L, -2, i + 1);
      });
      return 1;
    },
    read: () => {
      const file = fileOf(lua.lua_tointeger(L, 1));
      const got = readIncluded(file);
      if (!got.ok) return fail(got.error);
      read.add(file);
      lua.lua_pushstring(L, got.value);
      return 1;
    },
    getenv: () => {
      const value = env[str(1)];
      if (value === undefined) lua.lua_pushnil(L);
      else lua.lua_pushstring(L, f.to_luastring(value));
      return 1;
    },
    nameprep: () => {
      const name = str(1);
      const prepped = nameprepHost(name);
      if (prepped === undefined) return fail(quote(name));
      lua.lua_pushstring(L, f.to_luastring(prepped));
      return 1;
    },
    print: () => {
      opts.print?.(str(1));
      return 0;
    },
  };

  try {
    if (f.lauxlib.luaL_loadbuffer(L, f.to_luastring(PRELUDE), null, "=config-sandbox") !== lua.LUA_OK) {
      throw new Error(str(-1));
    }
    lua.lua_createtable(L, 0, 5);
    for (const [name, fn] of Object.entries(hostapi)) {
      lua.lua_pushjsfunction(L, (state) => {
        try {
          return fn(state);
        } catch (err) {
          return fail(String(err));
        }
      });
      lua.lua_setfield(L, -2, name);
    }
    lua.lua_pushinteger(L, INSTRUCTION_LIMIT);
    lua.lua_pushinteger(L, MAX_INCLUDE_DEPTH);
    lua.lua_call(L, 3, 1);
  } catch (err) {
    throw new ConfigError(`${fileName}: internal error preparing the config sandbox: ${String(err)}`, { file: fileName, cause: err });
  }

  lua.lua_pushstring(L, text);
  let status: number;
  try {
    status = lua.lua_pcall(L, 1, 2, 0);
  } catch (err) {
    // A JS-level failure inside the VM (e.g. the JS stack overflowing on deep recursion).
    throw new ConfigError(`${fileName}: error while evaluating the config: ${err instanceof Error ? err.message : String(err)}`, { file: fileName, cause: err });
  }
  if (status !== lua.LUA_OK) throw luaError(f, L, fileName, fileOf, untoken);

  const warnings: string[] = [];
  const sectionsIdx = lua.lua_absindex(L, -2);
  const warningsIdx = lua.lua_absindex(L, -1);
  for (let i = 1, n = lua.lua_rawlen(L, warningsIdx); i <= n; i++) {
    lua.lua_rawgeti(L, warningsIdx, i);
    warnings.push(untoken(str(-1)));
    lua.lua_pop(L, 1);
  }
  const sections: ConfigSection[] = [];
  for (let i = 1, n = lua.lua_rawlen(L, sectionsIdx); i <= n; i++) {
    lua.lua_rawgeti(L, sectionsIdx, i);
    lua.lua_getfield(L, -1, "name");
    const name = str(-1);
    lua.lua_getfield(L, -2, "kind");
    const kind = str(-1) as ConfigSection["kind"];
    lua.lua_getfield(L, -3, "file");
    const file = fileOf(lua.lua_tointeger(L, -1));
    lua.lua_getfield(L, -4, "line");
    const line = lua.lua_type(L, -1) === lua.LUA_TNUMBER ? lua.lua_tointeger(L, -1) : undefined;
    lua.lua_getfield(L, -5, "options");
    const skipped: string[] = [];
    const options = convertOptions(f, L, lua.lua_absindex(L, -1), { name, file, warnings: skipped });
    warnings.push(...skipped.sort()); // sorted: lua_next order must not show
    lua.lua_pop(L, 6);
    sections.push(line === undefined ? { name, kind, options, file } : { name, kind, options, file, line });
  }
  return { sections, warnings, files: [...read] };
}

function luaError(
  f: Fengari, L: LuaState, fileName: string, fileOf: (id: number) => string, untoken: (s: string) => string,
): ConfigError {
  const { lua } = f;
  const type = lua.lua_type(L, -1);
  const raw = type === lua.LUA_TSTRING || type === lua.LUA_TNUMBER
    ? decoder.decode(lua.lua_tolstring(L, -1))
    : `(error object is a ${decoder.decode(lua.lua_typename(L, type))} value)`;
  // Chunk names are "=<cfg:N>", so fengari never adds `[string "…"]`; strip one anyway.
  const oneLine = raw.replace(/\[string "[^"]*"\]/g, fileName).replace(/\s*[\r\n]+\s*/g, " ").trim();
  const at = POSITION.exec(oneLine);
  if (at) {
    const file = fileOf(Number(at[1]));
    return new ConfigError(untoken(oneLine), { file, line: Number(at[2]) });
  }
  return new ConfigError(`${fileName}: ${untoken(oneLine)}`, { file: fileName });
}

export interface ConvertContext { name: string; file: string; warnings: string[] }

/**
 * The section's option table → a JS object; unsupported values are skipped with a warning.
 * Also used by the migrator for its own config (src/migrator/config.ts).
 */
export function convertOptions(f: Fengari, L: LuaState, idx: number, ctx: ConvertContext): Record<string, OptionValue> {
  const { lua } = f;
  const entries = new Map<string, OptionValue>();
  const seen = new Set<unknown>([lua.lua_topointer(L, idx)]);
  lua.lua_pushnil(L);
  while (lua.lua_next(L, idx) !== 0) {
    const key = keyOf(f, L, -2);
    if (key === undefined) {
      ctx.warnings.push(`${ctx.file}: an option in section ${quote(ctx.name)} has a ${typeName(f, L, -2)} name; ignored`);
    } else {
      const value = toJs(f, L, lua.lua_absindex(L, -1), key, ctx, seen);
      if (value !== undefined) entries.set(key, value);
    }
    lua.lua_pop(L, 1);
  }
  return makeObject(entries);
}

function typeName(f: Fengari, L: LuaState, i: number): string {
  return decoder.decode(f.lua.lua_typename(L, f.lua.lua_type(L, i)));
}

/** A table key as an object key; numbers become their decimal text. */
function keyOf(f: Fengari, L: LuaState, i: number): string | undefined {
  const { lua } = f;
  switch (lua.lua_type(L, i)) {
    case lua.LUA_TSTRING: return decoder.decode(lua.lua_tolstring(L, i));
    // Not lua_tolstring: it would turn the key into a string in place and break lua_next.
    case lua.LUA_TNUMBER: return String(lua.lua_isinteger(L, i) ? lua.lua_tointeger(L, i) : lua.lua_tonumber(L, i));
    default: return undefined;
  }
}

function toJs(f: Fengari, L: LuaState, idx: number, path: string, ctx: ConvertContext, seen: Set<unknown>): OptionValue | undefined {
  const { lua } = f;
  const type = lua.lua_type(L, idx);
  switch (type) {
    case lua.LUA_TSTRING: return decoder.decode(lua.lua_tolstring(L, idx));
    case lua.LUA_TNUMBER: return lua.lua_tonumber(L, idx);
    case lua.LUA_TBOOLEAN: return lua.lua_toboolean(L, idx);
    case lua.LUA_TTABLE: break;
    default:
      ctx.warnings.push(`${ctx.file}: option '${path}' in section ${quote(ctx.name)} is a ${typeName(f, L, idx)} value, which a config option cannot hold; ignored`);
      return undefined;
  }
  const pointer = lua.lua_topointer(L, idx);
  if (seen.has(pointer)) {
    ctx.warnings.push(`${ctx.file}: option '${path}' in section ${quote(ctx.name)} contains itself; the inner reference is ignored`);
    return undefined;
  }
  seen.add(pointer);
  const numbered = new Map<number, OptionValue | undefined>();
  const named = new Map<string, OptionValue>();
  let integerKeys = true;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, idx) !== 0) {
    const keyType = lua.lua_type(L, -2);
    if (keyType === lua.LUA_TNUMBER) {
      const isInt = lua.lua_isinteger(L, -2);
      const key = isInt ? lua.lua_tointeger(L, -2) : lua.lua_tonumber(L, -2);
      if (!isInt) integerKeys = false;
      numbered.set(key, toJs(f, L, lua.lua_absindex(L, -1), `${path}[${key}]`, ctx, seen));
    } else if (keyType === lua.LUA_TSTRING) {
      const key = decoder.decode(lua.lua_tolstring(L, -2));
      const value = toJs(f, L, lua.lua_absindex(L, -1), `${path}.${key}`, ctx, seen);
      if (value !== undefined) named.set(key, value);
    } else {
      ctx.warnings.push(`${ctx.file}: option '${path}' in section ${quote(ctx.name)} has a ${typeName(f, L, -2)} key; that entry is ignored`);
    }
    lua.lua_pop(L, 1);
  }
  seen.delete(pointer);

  const n = numbered.size;
  const isSequence = named.size === 0 && integerKeys && [...numbered.keys()].every((k) => k >= 1 && k <= n);
  if (isSequence) {
    const list: OptionValue[] = [];
    for (let i = 1; i <= n; i++) {
      const value = numbered.get(i);
      if (value !== undefined) list.push(value);
    }
    return list;
  }
  // Numeric keys first, so a string key "1" wins over the number 1 whatever the hash order.
  const entries = new Map<string, OptionValue>();
  for (const [key, value] of numbered) if (value !== undefined) entries.set(String(key), value);
  for (const [key, value] of named) entries.set(key, value);
  return makeObject(entries);
}
