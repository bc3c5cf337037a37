import type { SendLogRepository } from '../store/send-log.js';
import { certainlyNotDelivered } from './delivery-error.js';
import { nextPlaceAt, PLACE_HOLD_MS, RATE_WINDOW_MS } from './rate-limit.js';

/** What a place needs of the send log. */
export type SendLogPlaces = Pick<SendLogRepository, 'reserve' | 'settle' | 'release'>;

/**
 * An account's places under its hourly rate limit, kept in the send log that every instance
 * sharing the database reads: a send takes one before it goes (the queue for each message, the
 * heartbeat for each beat), then gives it back when the message did not go or settles it (it
 * counts as a send) when it went or may have. A delivery recorded as sent replaces its place.
 */
export class RateLimitPlaces {
  constructor(private readonly sendLog: SendLogPlaces) {}

  /**
   * Takes a place at `now` for send `id` of `serverId` under `limit` sends an hour (more than 0),
   * under a lock every instance respects: two engines sending for one account never both take
   * the last one. Returns when the send may go: not after `now` when the place was taken; later
   * (nothing taken) when the hour has no place before then.
   */
  take(serverId: string, id: string, limit: number, now: number): Promise<number> {
    return this.sendLog.reserve(serverId, id, new Date(now), new Date(now - RATE_WINDOW_MS - PLACE_HOLD_MS), (lines) =>
      nextPlaceAt(lines, limit, now),
    );
  }

  /** Gives back the place of a send that did not go. */
  release(id: string): Promise<void> {
    return this.sendLog.release(id);
  }

  /** Counts the place as a send at `at`: the message went, or may have. */
  settle(id: string, at: Date): Promise<void> {
    return this.sendLog.settle(id, at);
  }

  /**
   * After a failed attempt: the place is given back when the message certainly did not go (the
   * server refused it, or no connection was made), and otherwise counts as a send at `at` (cut
   * off during or after DATA, it may have gone).
   */
  afterFailure(id: string, err: unknown, at: Date): Promise<void> {
    return certainlyNotDelivered(err) ? this.release(id) : this.settle(id, at);
  }
}
