import type { EntityManager } from 'typeorm';
import { SendLogEntity } from './entities.js';

/** One line of the send log as the rate limit reads it. */
export interface SendLogEntry {
  sentAt: Date;
  /** False for a place taken before a send whose delivery is not recorded (yet, or ever). */
  recorded: boolean;
}

/** The durable record of sends the hourly rate limit reads: it survives restarts. */
export class SendLogRepository {
  constructor(private readonly em: EntityManager) {}

  async record(serverId: string, sentAt: Date, outboundId: string | null): Promise<void> {
    await this.em.insert(SendLogEntity, { serverId, sentAt, outboundId });
  }
  /** Recorded send times of a server since `since`, oldest first. */
  async since(serverId: string, since: Date): Promise<Date[]> {
    const rows: Array<{ sent_at: Date }> = await this.em.query(
      'SELECT sent_at FROM smtp_send_log WHERE server_id = $1 AND sent_at > $2 AND recorded ORDER BY sent_at ASC',
      [serverId, since],
    );
    return rows.map((r) => new Date(r.sent_at));
  }
  /**
   * Takes a place for one send under the server's rate limit, or says when one frees up. Under a
   * lock per server held until the transaction ends (a transaction-scoped advisory lock, so every
   * engine instance on this database waits for it): reads the log since `since`, asks `decide`
   * when the next send may go, and when that is not after `now`, inserts a place for `outboundId`
   * (`recorded = false`; the delivery's `recordSent` replaces it, `release` gives it back).
   * Returns `decide`'s answer; a place was taken when it is not after `now`.
   */
  async reserve(
    serverId: string,
    outboundId: string,
    now: Date,
    since: Date,
    decide: (entries: SendLogEntry[]) => number,
  ): Promise<number> {
    return this.em.transaction(async (em) => {
      await em.query(`SELECT pg_advisory_xact_lock(hashtextextended('mailroom.send-log:' || $1, 0))`, [serverId]);
      const rows: Array<{ sent_at: Date; recorded: boolean }> = await em.query(
        'SELECT sent_at, recorded FROM smtp_send_log WHERE server_id = $1 AND sent_at > $2',
        [serverId, since],
      );
      const allowedAt = decide(rows.map((r) => ({ sentAt: new Date(r.sent_at), recorded: r.recorded })));
      if (allowedAt <= now.getTime()) {
        await em.insert(SendLogEntity, { serverId, sentAt: now, outboundId, recorded: false });
      }
      return allowedAt;
    });
  }
  /** Counts the place taken for a message that may have gone out (its attempt failed midway) as a send at `at`. */
  async settle(outboundId: string, at: Date): Promise<void> {
    await this.em.query(
      'UPDATE smtp_send_log SET recorded = true, sent_at = $2 WHERE outbound_id = $1 AND NOT recorded',
      [outboundId, at],
    );
  }
  /** Gives back the place taken for a message that did not go out. */
  async release(outboundId: string): Promise<void> {
    await this.em.query('DELETE FROM smtp_send_log WHERE outbound_id = $1 AND NOT recorded', [outboundId]);
  }
  /** Forgets sends older than `before` (they no longer count for any window). */
  async prune(before: Date): Promise<void> {
    await this.em.query('DELETE FROM smtp_send_log WHERE sent_at < $1', [before]);
  }
}
