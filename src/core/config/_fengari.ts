/**
 * Lazy access to fengari (a Lua 5.3 VM in JS), which ships no type declarations: this is the
 * part of its C-like API the config sandbox uses.
 */

export type LuaState = { readonly __brand?: "lua_State" };
export type JsFunction = (L: LuaState) => number;
export interface Fengari {
  lua: {
    LUA_OK: number; LUA_TNIL: number; LUA_TBOOLEAN: number; LUA_TNUMBER: number; LUA_TSTRING: number; LUA_TTABLE: number;
    lua_absindex(L: LuaState, i: number): number;
    lua_call(L: LuaState, nargs: number, nresults: number): void;
    lua_createtable(L: LuaState, narr: number, nrec: number): void;
    lua_getfield(L: LuaState, i: number, k: string): number;
    lua_gettop(L: LuaState): number;
    lua_isinteger(L: LuaState, i: number): boolean;
    lua_next(L: LuaState, i: number): number;
    lua_pcall(L: LuaState, nargs: number, nresults: number, errfunc: number): number;
    lua_pop(L: LuaState, n: number): void;
    lua_pushinteger(L: LuaState, n: number): void;
    lua_pushjsfunction(L: LuaState, f: JsFunction): void;
    lua_pushnil(L: LuaState): void;
    lua_pushstring(L: LuaState, s: Uint8Array | string): void;
    lua_rawgeti(L: LuaState, i: number, n: number): number;
    lua_rawlen(L: LuaState, i: number): number;
    lua_rawseti(L: LuaState, i: number, n: number): void;
    lua_setfield(L: LuaState, i: number, k: string): void;
    lua_toboolean(L: LuaState, i: number): boolean;
    lua_tointeger(L: LuaState, i: number): number;
    lua_tolstring(L: LuaState, i: number): Uint8Array;
    lua_tonumber(L: LuaState, i: number): number;
    lua_topointer(L: LuaState, i: number): unknown;
    lua_type(L: LuaState, i: number): number;
    lua_typename(L: LuaState, t: number): Uint8Array;
  };
  lauxlib: {
    luaL_newstate(): LuaState;
    luaL_loadbuffer(L: LuaState, s: Uint8Array, sz: number | null, name: string): number;
  };
  lualib: { luaL_openlibs(L: LuaState): void };
  to_luastring(s: string): Uint8Array;
}

const FENGARI_MODULE = "fengari"; // a variable, so tsc does not look for typings
let fengari: Promise<Fengari> | undefined;

/**
 * Set in prosodyctl's fast bundle, which the executable compiles through node:vm, where import()
 * needs an experimental Node feature (prosodyctl-shim/prosodyctl, src/cli/bin.ts).
 */
declare const __prosodyctlImport: ((specifier: string) => Promise<unknown>) | undefined;

/** Imports fengari once, on first use. */
export function loadFengari(): Promise<Fengari> {
  fengari ??= (
    (typeof __prosodyctlImport === "function" ? __prosodyctlImport(FENGARI_MODULE) : import(FENGARI_MODULE)) as Promise<{ default?: Fengari } & Fengari>
  ).then((m) => m.default ?? m);
  return fengari;
}
