/**
 * Module resolve hooks (registered by plugin-imports.ts with node:module's `register`; they run
 * on Node's loader thread): `import … from "prosody-ts"` and `"prosody-ts/util"` resolve to the
 * running host's own entry points, whatever folder the importing plugin lives in. Standalone on
 * purpose: the loader thread loads this file alone.
 */

interface ResolveContext {
  conditions: string[];
  importAttributes?: Record<string, string>;
  parentURL?: string;
}
interface ResolveResult {
  url: string;
  format?: string | null;
  shortCircuit?: boolean;
}
type NextResolve = (specifier: string, context: ResolveContext) => Promise<ResolveResult>;

let targets: Record<string, string> = {};

export async function initialize(data: { targets: Record<string, string> }): Promise<void> {
  targets = data.targets;
}

export async function resolve(specifier: string, context: ResolveContext, next: NextResolve): Promise<ResolveResult> {
  const url = Object.hasOwn(targets, specifier) ? targets[specifier] : undefined;
  // Always the host's copy, even if the plugin has its own node_modules/prosody-ts: one instance
  // of the API (StorageError, REMOVE…) for every plugin.
  if (url) return { url, shortCircuit: true };
  return next(specifier, context);
}
