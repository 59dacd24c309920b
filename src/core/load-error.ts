/** Why a module could not be loaded, with Prosody's error codes (core/modulemanager.lua). */

export type LoadErrorCode =
  | "insufficient-parameters"
  | "unknown-host"
  | "module-already-loaded"
  | "global-module-already-loaded"
  | "module-not-found"
  | "module-init-failed";

export class ModuleLoadError extends Error {
  override name = "ModuleLoadError";
  constructor(
    readonly code: LoadErrorCode,
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ?? code, options);
  }
}
