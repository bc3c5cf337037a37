/**
 * Maps `items` through `fn` with at most `limit` calls in flight, results in input order. For work
 * that is mostly CPU on this thread (parsing small messages), a few at a time beat all at once:
 * hundreds of interleaved parsers keep hundreds of half-built results alive for the collector.
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R> | R,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  return results;
}
