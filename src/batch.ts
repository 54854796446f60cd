/**
 * Runs `fn` over `items` with at most `limit` in flight, so file-system work
 * goes to libuv's thread pool in parallel without a task per file at once.
 * After the first failure no new item is started, and that failure is thrown.
 */
export const forEachBounded = async <T>(
  items: ReadonlyArray<T>,
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> => {
  let next = 0
  let failed = false
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++
      try {
        await fn(items[i]!, i)
      } catch (e) {
        failed = true
        throw e
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/** Parallelism for file-system batches: enough to keep the thread pool busy. */
export const IO_CONCURRENCY = 16
