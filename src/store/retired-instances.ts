import type { EntityManager } from 'typeorm';
import { LeaseRepository } from './leases.js';
import { WITHDRAWN_OUTCOME } from './outbound-requests.js';

/** What retiring an instance changed. */
export interface RetiredInstance {
  instanceId: string;
  retiredAt: Date;
  /** Its messages still waiting to be sent, now failed. */
  failedMessages: number;
  /** Its dead letters, no longer listed (their files were on its disk). */
  unlistedDeadLetters: number;
  /** Requests that were waiting for it, now withdrawn. */
  withdrawnRequests: number;
}

/**
 * Instances whose spool an administrator gave up (`retired_instances`): retiring one settles, in
 * one transaction, everything that waited for its disk. Retiring and an instance's start take the
 * same lock (a transaction-scoped advisory lock on the instance's name), so one that starts is
 * either retired before it looks (and sets its spool aside) or announced before the retirement
 * looks (and refused): never retired under it while it starts.
 */
export class RetiredInstanceRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * Retires an instance: its waiting messages become failed with `reply`, its dead letters are no
   * longer listed, the requests waiting for it are withdrawn. Null (nothing changed) while a
   * process of that name announces itself.
   */
  async retire(instanceId: string, reply: string): Promise<RetiredInstance | null> {
    return this.em.transaction(async (em) => {
      await lockInstanceName(em, instanceId);
      const live: unknown[] = await em.query(
        `SELECT 1 FROM engine_instances WHERE instance_id = $1 AND expires_at > now()`,
        [instanceId],
      );
      if (live.length > 0) return null;
      const [retired]: Array<{ retired_at: Date | string }> = await em.query(
        `INSERT INTO retired_instances (instance_id) VALUES ($1)
           ON CONFLICT (instance_id) DO UPDATE SET retired_at = now() RETURNING retired_at`,
        [instanceId],
      );
      const count = async (sql: string, params: unknown[]): Promise<number> => {
        const rows: unknown[] = await em.query(`WITH changed AS (${sql} RETURNING 1) SELECT 1 FROM changed`, params);
        return rows.length;
      };
      const failedMessages = await count(
        `UPDATE outbound_messages SET status = 'failed', last_reply = $2, next_attempt_at = NULL, updated_at = now()
          WHERE instance_id = $1 AND status IN ('queued', 'sending', 'deferred')`,
        [instanceId, reply],
      );
      const unlistedDeadLetters = await count(
        `UPDATE outbound_messages SET dead_lettered_at = NULL, updated_at = now()
          WHERE instance_id = $1 AND dead_lettered_at IS NOT NULL`,
        [instanceId],
      );
      const withdrawnRequests = await count(
        `UPDATE outbound_requests SET done_at = now(), outcome = $2 WHERE instance_id = $1 AND done_at IS NULL`,
        [instanceId, WITHDRAWN_OUTCOME],
      );
      return {
        instanceId,
        retiredAt: new Date((retired as { retired_at: Date | string }).retired_at),
        failedMessages,
        unlistedDeadLetters,
        withdrawnRequests,
      };
    });
  }

  /**
   * An instance starts: it is announced as running (`owner` until now + `ttlMs`, as the lease
   * keeper renews it) under the lock that retiring takes; resolves whether it was retired (and has
   * not started again since).
   */
  async claim(instanceId: string, announce: { owner: string; ttlMs: number }): Promise<boolean> {
    return this.em.transaction(async (em) => {
      await lockInstanceName(em, instanceId);
      await new LeaseRepository(em).announce(announce.owner, instanceId, announce.ttlMs);
      return new RetiredInstanceRepository(em).has(instanceId);
    });
  }

  /** Whether the instance was retired (and has not started again since). */
  async has(instanceId: string): Promise<boolean> {
    const rows: unknown[] = await this.em.query(`SELECT 1 FROM retired_instances WHERE instance_id = $1`, [instanceId]);
    return rows.length > 0;
  }
  /** The instance started again: its name is free. */
  async forget(instanceId: string): Promise<void> {
    await this.em.query(`DELETE FROM retired_instances WHERE instance_id = $1`, [instanceId]);
  }
}

/** Serializes, within a transaction, what retires an instance and what starts it. */
async function lockInstanceName(em: EntityManager, instanceId: string): Promise<void> {
  await em.query(`SELECT pg_advisory_xact_lock(hashtext('mailroom.instance:' || $1))`, [instanceId]);
}
