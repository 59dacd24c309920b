/**
 * A lazily started promise that is kept once it fulfils and forgotten when it rejects, so the next
 * call starts it again. For a module's stores: `openStore` rejects when the storage is unavailable
 * for now (lock timeout, too many open files), and a cached rejection (or worse, a cached empty
 * fallback) would outlive the cause until restart.
 *
 * @example
 * const keys = cachedPromise(() => module.openStore("invite_api_keys", "map"));
 * const store = await keys();
 */
export function cachedPromise<T>(start: () => Promise<T>): () => Promise<T> {
  let cached: Promise<T> | undefined;
  return () => {
    if (cached) return cached;
    let p: Promise<T>;
    try {
      p = Promise.resolve(start());
    } catch (err) {
      return Promise.reject(err);
    }
    cached = p;
    p.catch(() => {
      if (cached === p) cached = undefined;
    });
    return p;
  };
}
