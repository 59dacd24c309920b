/**
 * Run in a child process by fast-path.test.ts: prints whether fengari is loaded after a
 * declarative config, then after one that needs the VM.
 */
import { createRequire } from "node:module";
import { loadConfigFile, loadConfigString } from "../../src/core/config/index.js";
import { fixture } from "./_helpers.js";

const require = createRequire(import.meta.url);
const fengariLoaded = () => Object.keys(require.cache).some((k) => /[\\/]fengari[\\/]/.test(k));

await loadConfigFile(fixture("declarative", "main.cfg.lua"));
const afterDeclarative = fengariLoaded();
await loadConfigString(`local x = 1\ny = x`, "probe.cfg.lua");
console.log(JSON.stringify({ afterDeclarative, afterLua: fengariLoaded() }));
