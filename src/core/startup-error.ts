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

/** Why a bind failed, in words (the errno code stays in the message for searching). */
export function bindFailureReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case "EADDRINUSE":
      return "address already in use (EADDRINUSE): another server, or another copy of this one, has it";
    case "EADDRNOTAVAIL":
      return "address not available (EADDRNOTAVAIL): no interface of this machine has it";
    case "EACCES":
      return "permission denied (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE";
    default:
      return err instanceof Error ? err.message : String(err);
  }
}
