import type { SendLogEntry } from '../store/send-log.js';

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

/**
 * [900000] How long a place taken before a send counts as "sending now" while no record of the
 * delivery replaces it (15 min, longer than any SMTP timeout). A place left behind by an engine
 * that stopped during the send then counts as a send at that later time: the message may have
 * gone, so the limit errs on the side of fewer sends.
 */
export const PLACE_HOLD_MS = 15 * 60 * 1000;

/**
 * When the next message may go, counting the places taken for sends not recorded yet (by this
 * engine or another one sharing the database) as sends at `now`, or at their time plus
 * {@link PLACE_HOLD_MS} once that has passed. Read `lines` from at least
 * `now - RATE_WINDOW_MS - PLACE_HOLD_MS` on.
 */
export function nextPlaceAt(lines: readonly SendLogEntry[], limit: number, now: number): number {
  const times = lines.map((l) => (l.recorded ? l.sentAt.getTime() : Math.min(now, l.sentAt.getTime() + PLACE_HOLD_MS)));
  return nextSendAllowedAt(times, limit, now);
}
