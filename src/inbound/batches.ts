/**
 * Splits new messages into fetch batches bounded by count and total bytes, in UID order. A
 * message larger than the byte budget travels alone; messages over `maxMessageBytes` are set
 * apart (they are quarantined from their header without fetching the body). `size` may be an
 * upper bound (a message known to be small).
 */
export function planBatches<T extends { size: number }>(
  messages: readonly T[],
  limits: { maxCount: number; maxBytes: number; maxMessageBytes: number },
): Array<{ fetch: T[]; tooLarge: T[] }> {
  const batches: Array<{ fetch: T[]; tooLarge: T[] }> = [];
  let current = { fetch: [] as T[], tooLarge: [] as T[] };
  let bytes = 0;
  const flush = (): void => {
    if (current.fetch.length + current.tooLarge.length > 0) batches.push(current);
    current = { fetch: [], tooLarge: [] };
    bytes = 0;
  };
  for (const m of messages) {
    if (m.size > limits.maxMessageBytes) {
      current.tooLarge.push(m);
      continue;
    }
    if (current.fetch.length >= limits.maxCount || (current.fetch.length > 0 && bytes + m.size > limits.maxBytes))
      flush();
    current.fetch.push(m);
    bytes += m.size;
  }
  flush();
  return batches;
}
