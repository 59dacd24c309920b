/**
 * A stand-in for the per-file lock FileUpdates takes (src/storage/internal/file-locks.ts): one
 * holder at a time, in order of asking, within this process; a failed holder releases it too.
 */
export function serialLock(): <T>(file: string, fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(_file: string, fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn);
    tail = run.catch(() => {});
    return run;
  };
}
