/**
 * Runs `fn` over `items` with at most `limit` in flight, so file-system work
 * goes to libuv's thread pool in parallel without a task per file at once.
 * After the first failure no new item is started; the failure is thrown once
 * every item already started has settled, so whoever undoes the batch's work
 * does not race writes still landing.
 */
export const forEachBounded = async <T>(
  items: ReadonlyArray<T>,
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> => {
  let next = 0
  let failure: { error: unknown } | undefined
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++
      try {
        await fn(items[i]!, i)
      } catch (e) {
        failure ??= { error: e }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  if (failure) throw failure.error
}

/** Parallelism for file-system batches: enough to keep the thread pool busy. */
export const IO_CONCURRENCY = 16
