-- Runs Prosody's own util.encodings.stringprep (lua5.4 + /usr/lib/prosody) for
-- test/util/stringprep-prosody.test.ts. Each result is "=" (unchanged), "-" (nil) or the result in hex;
-- six per input: nodeprep, nodeprep strict, nameprep, nameprep strict, saslprep, saslprep strict.
--   lua5.4 _prosody-stringprep.lua PROSODY_DIR all FIRST LAST  every code point from FIRST to LAST (runs of
--                                                               equal "="/"-" results as one line)
--   lua5.4 _prosody-stringprep.lua PROSODY_DIR lines            one hex-encoded input per stdin line
local dir, mode = arg[1], arg[2]
package.path = dir .. "/?.lua;" .. package.path
package.cpath = dir .. "/?.so;" .. package.cpath
local sp = require "util.encodings".stringprep

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function results(s)
  local out = {}
  for _, f in ipairs({ sp.nodeprep, sp.nameprep, sp.saslprep }) do
    for _, strict in ipairs({ false, true }) do
      local r = f(s, strict)
      out[#out + 1] = r == nil and "-" or r == s and "=" or hex(r)
    end
  end
  return table.concat(out, " ")
end

if mode == "all" then
  local first, last = tonumber(arg[3]), tonumber(arg[4])
  local run_start, run_sig
  local function flush(before)
    if run_sig then io.write(string.format("%x %x %s\n", run_start, before - 1, run_sig)) end
    run_sig = nil
  end
  for c = first, last do
    if c < 0xD800 or c > 0xDFFF then
      local sig = results(utf8.char(c))
      if sig:find("[0-9a-f]") then
        flush(c)
        io.write(string.format("%x %x %s\n", c, c, sig))
      elseif sig ~= run_sig then
        flush(c)
        run_start, run_sig = c, sig
      end
    else
      flush(c)
    end
  end
  flush(last + 1)
elseif mode == "lines" then
  for line in io.lines() do
    io.write(results((line:gsub("..", function(h) return string.char(tonumber(h, 16)) end))), "\n")
  end
end
