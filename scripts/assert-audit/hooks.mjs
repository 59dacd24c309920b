// Resolve hook: "uvu" and "uvu/assert" imported from anywhere but our wrappers get the wrappers.
const here = new URL(".", import.meta.url).href;
const WRAPPERS = { uvu: "counted-uvu.mjs", "uvu/assert": "counted-assert.mjs" };

export async function resolve(specifier, context, next) {
  const wrapper = WRAPPERS[specifier];
  if (wrapper && !context.parentURL?.startsWith(here)) return { url: here + wrapper, shortCircuit: true };
  return next(specifier, context);
}
