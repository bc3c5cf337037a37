/** [3600000] the window of "messages per hour", ms. */
export const RATE_WINDOW_MS = 60 * 60 * 1000;

/**
 * When the next message may go under a sliding-hour limit: never more than `limit` sends in any
 * window of one hour. `sends` are the account's send times (any order; older ones are ignored).
 * Returns `now` when a message may go at once; `limit` 0 means no limit.
 */
export function nextSendAllowedAt(sends: readonly number[], limit: number, now: number): number {
  if (limit <= 0) return now;
  const recent = sends.filter((t) => t > now - RATE_WINDOW_MS).sort((a, b) => a - b);
  if (recent.length < limit) return now;
  // The send that must leave the window before one more fits.
  const blocking = recent[recent.length - limit] as number;
  return blocking + RATE_WINDOW_MS;
}
