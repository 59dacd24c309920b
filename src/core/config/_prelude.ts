/**
 * Lua source run once per config load, in a fresh fengari state with the full standard
 * library. It builds, for every config file, an environment with Prosody's configmanager
 * semantics and returns `main(text)`. Config code never sees this chunk's upvalues (debug,
 * load, the host callbacks); it sees only the environment built by `make_env`.
 *
 * Files are named "<cfg:N>" inside the VM (short, so Lua never truncates them); lua-sandbox.ts
 * maps the tokens back to paths in every message it takes out.
 *
 * Host callbacks (JS): resolve(from_id, spec) → { ids } | nil, err; read(id) → text | nil, err;
 * getenv(name) → string | nil; nameprep(name) → name | nil, quoted; print(text).
 */
export const PRELUDE = String.raw`
local hostapi, instruction_limit, max_depth = ...
local type, tostring, pairs, ipairs, select, error, load, setmetatable, rawget =
      type, tostring, pairs, ipairs, select, error, load, setmetatable, rawget
local format, sub, find, concat = string.format, string.sub, string.find, table.concat
local getinfo, sethook = debug.getinfo, debug.sethook

local sections, by_name, warnings = {}, {}, {}
local depth = 0

-- "<cfg:N>:LINE: " for the innermost frame running config code (of file N if given).
local function where(id)
  local level = 2
  while true do
    local info = getinfo(level, "Sl")
    if not info then return "", nil end
    local src = info.source
    if (id and src == "=<cfg:" .. id .. ">") or (not id and find(src, "^=<cfg:%d+>$")) then
      return sub(src, 2) .. ":" .. info.currentline .. ": ", info.currentline
    end
    level = level + 1
  end
end

local function fail(message)
  error(where() .. message, 0)
end

local function new_section(name, kind, id, line)
  local s = { name = name, kind = kind, file = id, line = line, options = {} }
  sections[#sections + 1] = s
  by_name[name] = s
  return s
end

local function set(section_name, key, value)
  by_name[section_name].options[key] = value
end

-- Library tables config code may read; anything else raises a clear error when touched.
local function blocked(name)
  return setmetatable({}, {
    __index = function(_, k) fail(format("'%s.%s' is not available in config files", name, tostring(k))) end,
    __newindex = function(_, k) fail(format("'%s.%s' is not available in config files", name, tostring(k))) end,
  })
end
local function blocked_function(name)
  return function() fail(format("'%s' is not available in config files", name)) end
end
local function copy(lib, strict_name)
  local t = {}
  for k, v in pairs(lib) do t[k] = v end
  if strict_name then
    setmetatable(t, { __index = function(_, k)
      fail(format("'%s.%s' is not available in config files", strict_name, tostring(k)))
    end })
  end
  return t
end

-- The instruction-count hook raises this; the pcall/xpcall given to config code re-raise it, so
-- an endless loop wrapped in pcall still ends.
local timed_out = nil
local function on_timeout()
  timed_out = timed_out or (where() .. "config evaluation took too long (endless loop?)")
  error(timed_out, 0)
end
local function unless_timed_out(...)
  if timed_out then error(timed_out, 0) end
  return ...
end

local safe = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = function(...) return unless_timed_out(pcall(...)) end,
  xpcall = function(...) return unless_timed_out(xpcall(...)) end,
  rawequal = rawequal, rawget = rawget, rawlen = rawlen, select = select,
  tonumber = tonumber, tostring = tostring, type = type, _VERSION = _VERSION,
  string = copy(string), table = copy(table), math = copy(math), utf8 = copy(utf8),
  os = copy({
    time = os.time, date = os.date, clock = os.clock, difftime = os.difftime,
    getenv = function(name)
      if type(name) ~= "string" then fail("bad argument #1 to 'getenv' (string expected, got " .. type(name) .. ")") end
      return hostapi.getenv(name)
    end,
  }, "os"),
  print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    hostapi.print(concat(parts, "\t"))
  end,
  io = blocked("io"), package = blocked("package"), debug = blocked("debug"),
  require = blocked_function("require"), dofile = blocked_function("dofile"),
  loadfile = blocked_function("loadfile"), load = blocked_function("load"),
  loadstring = blocked_function("loadstring"), collectgarbage = blocked_function("collectgarbage"),
}
safe._G = setmetatable({}, {
  __index = safe,
  __newindex = function(_, k) fail(format("cannot assign to _G.%s in a config file", tostring(k))) end,
})

local run_file

local function make_env(id)
  local current = "*"
  local seen = {}
  local env = {}

  local function prep(label, name)
    if name == nil then fail(label .. " must have a name") end
    if type(name) ~= "string" then fail(format("%s name must be a string, got a %s", label, type(name))) end
    local prepped, quoted = hostapi.nameprep(name)
    if not prepped then fail(format("Name of %s %s contains forbidden characters", label, quoted)) end
    return prepped
  end

  local function apply_table(kind, name, options)
    current = "*"
    if type(options) ~= "table" then
      fail(format("Invalid syntax following %s %q: expected a table of options, got a %s", kind, name, type(options)))
    end
    for k, v in pairs(options) do set(name, k, v) end
  end

  function env.VirtualHost(name)
    name = prep("Host", name)
    local s = by_name[name]
    if s and s.kind == "Component" then
      fail(format("VirtualHost %q clashes with Component %q defined earlier; a service needs its own sub-domain (e.g. conference.%s)", name, name, name))
    end
    if not s then new_section(name, "VirtualHost", id, select(2, where(id))) end
    current = name
    set(name, "defined", true)
    return function(options)
      current = "*"
      if type(options) == "string" then
        fail(format("VirtualHost entries do not accept a module name ('%s' given for host '%s'); use Component \"<sub-domain>\" \"%s\" for a service", options, name, options))
      end
      apply_table("VirtualHost", name, options)
    end
  end
  env.Host, env.host = env.VirtualHost, env.VirtualHost

  function env.Component(name)
    name = prep("Component", name)
    local s = by_name[name]
    if s and s.kind == "VirtualHost" then
      fail(format("Component %q clashes with VirtualHost %q defined earlier; a service needs its own sub-domain (e.g. conference.%s)", name, name, name))
    end
    if not s then new_section(name, "Component", id, select(2, where(id))) end
    current = name
    set(name, "component_module", "component")
    set(name, "load_global_modules", false)
    return function(module)
      if type(module) == "string" then
        set(name, "component_module", module)
        return function(options) apply_table("Component", name, options) end
      end
      apply_table("Component", name, module)
    end
  end
  env.component = env.Component

  function env.Include(spec)
    if type(spec) ~= "string" then fail("Include expects a file name, got a " .. type(spec)) end
    local ids, err = hostapi.resolve(id, spec)
    if not ids then fail(err) end
    for i = 1, #ids do run_file(ids[i]) end
  end
  env.include = env.Include

  function env.RunScript(file)
    fail(format("RunScript is not supported (%q); put options in the config file or an Include", tostring(file)))
  end

  return setmetatable(env, {
    __index = function(_, k)
      if type(k) == "string" and sub(k, 1, 4) == "ENV_" then return hostapi.getenv(sub(k, 5)) end
      return safe[k]
    end,
    __newindex = function(_, k, v)
      local key = current .. "\0" .. tostring(k)
      if seen[key] then
        local pos = where(id)
        warnings[#warnings + 1] = format("%sDuplicate option '%s'", pos, tostring(k))
      end
      seen[key] = true
      set(current, k, v)
    end,
  })
end

function run_file(id, text)
  if not text then
    local err
    text, err = hostapi.read(id)
    if not text then fail(err) end
  end
  if depth >= max_depth then
    fail("Include nested too deeply (does <file:" .. id .. "> include itself?)")
  end
  local chunk, err = load(text, "=<cfg:" .. id .. ">", "t", make_env(id))
  if not chunk then error(err, 0) end
  depth = depth + 1
  local ok, run_err = pcall(chunk)
  depth = depth - 1
  if not ok then error(run_err, 0) end
end

return function(text)
  new_section("*", "global", 1, nil)
  sethook(on_timeout, "", instruction_limit)
  run_file(1, text)
  sethook()
  return sections, warnings
end
`;
