/**
 * A failure that must stop the server's start (a port that cannot be bound, nothing to serve),
 * carrying the one line an admin needs. The module manager and the runtime let it through
 * instead of logging it and going on without the module, and `prosodyctl start` prints it and
 * exits 1: a daemon that cannot do its job has to say so to its supervisor. No imports, so any
 * layer (the HTTP server included) can throw it.
 */
export class StartupError extends Error {
  override name = "StartupError";
}

/** The StartupError in `err`'s cause chain (module loads wrap what a plugin threw), if any. */
export function findStartupError(err: unknown): StartupError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    if (e instanceof StartupError) return e;
  }
  return undefined;
}
