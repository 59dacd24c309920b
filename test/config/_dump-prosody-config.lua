-- Test helper: loads a config with the REAL Prosody 0.12 configmanager (when installed) and
-- prints it as JSON shaped like our RawResult, for test/config/prosody-crosscheck.test.ts.
-- usage: lua5.4 _dump-prosody-config.lua <prosody lua dir> <config file>
local prosody_dir, file = arg[1], arg[2]
package.path = prosody_dir .. "/?.lua;" .. package.path
package.cpath = prosody_dir .. "/?.so;" .. package.cpath

local configmanager = require "core.configmanager"

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\t'] = '\\t', ['\r'] = '\\r' }
    return named[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_number(n)
  if math.type(n) == "integer" then return tostring(n) end
  if n == math.floor(n) and math.abs(n) < 2^53 then return string.format("%d", n) end
  return string.format("%.17g", n)
end

local encode
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

function encode(v)
  local t = type(v)
  if t == "string" then return json_string(v) end
  if t == "number" then return json_number(v) end
  if t == "boolean" then return tostring(v) end
  if t ~= "table" then return nil end
  local n, count, sequence = #v, 0, true
  for k in pairs(v) do
    count = count + 1
    if math.type(k) ~= "integer" or k < 1 or k > n then sequence = false end
  end
  local parts = {}
  if sequence and count == n then
    for i = 1, n do parts[#parts + 1] = encode(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  for _, k in ipairs(sorted_keys(v)) do
    local item = encode(v[k])
    if item then parts[#parts + 1] = json_string(tostring(k)) .. ":" .. item end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local ok, kind, err = configmanager.load(file)
if not ok then
  print('{"error":' .. json_string(tostring(err)) .. '}')
  return
end
local sections = {}
for host, options in pairs(configmanager.getconfig()) do
  local opts = {}
  for k, v in pairs(options) do opts[k] = v end
  sections[#sections + 1] = json_string(host) .. ":" .. encode(opts)
end
table.sort(sections)
local warnings = {}
for _, w in ipairs(err or {}) do warnings[#warnings + 1] = json_string(w) end
print('{"sections":{' .. table.concat(sections, ",") .. '},"warnings":[' .. table.concat(warnings, ",") .. ']}')
