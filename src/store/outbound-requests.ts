import type { EntityManager } from 'typeorm';

/** What an instance is asked to do to a message whose spool file it holds. */
export type OutboundAction = 'cancel' | 'requeue' | 'delete';

/** A request waiting for the instance that holds the message's spool file. */
export interface OutboundRequest {
  id: string;
  outboundId: string;
  action: OutboundAction;
  requestedAt: Date;
}

/** The outcome of a request withdrawn before its instance carried it out. */
export const WITHDRAWN_OUTCOME = 'withdrawn';

/**
 * A request as recorded: `doneAt` and `outcome` (`done`, {@link WITHDRAWN_OUTCOME}, or why not)
 * once it is settled; `claimedAt` while its holder carries it out.
 */
export interface OutboundRequestRecord extends OutboundRequest {
  instanceId: string;
  /** The message's e-mail server and subject. */
  serverId: string;
  subject: string;
  claimedAt: Date | null;
  doneAt: Date | null;
  outcome: string | null;
}

/** What became of an attempt to withdraw a request. */
export type WithdrawResult = 'withdrawn' | 'claimed' | 'settled' | 'absent';

interface RequestRecordRow {
  id: string;
  instance_id: string;
  outbound_id: string;
  server_id: string;
  subject: string;
  action: OutboundAction;
  requested_at: Date | string;
  claimed_at: Date | string | null;
  done_at: Date | string | null;
  outcome: string | null;
}

const RECORD_COLUMNS = `r.id::text AS id, r.instance_id, r.outbound_id, o.server_id, o.subject, r.action, r.requested_at,
  r.claimed_at, r.done_at, r.outcome`;

const at = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

function requestRecord(r: RequestRecordRow): OutboundRequestRecord {
  return {
    id: r.id,
    instanceId: r.instance_id,
    outboundId: r.outbound_id,
    serverId: r.server_id,
    subject: r.subject,
    action: r.action,
    requestedAt: new Date(r.requested_at),
    claimedAt: at(r.claimed_at),
    doneAt: at(r.done_at),
    outcome: r.outcome,
  };
}

/** Whether a request id can be one (a bigserial in decimal): others are looked up as absent. */
const isRequestId = (id: string): boolean => /^\d{1,18}$/.test(id);

/**
 * Requests for the instance holding a message's spool file (`outbound_requests`): any instance
 * asks, the holder claims each one, carries it out in order and writes the outcome. A request
 * not claimed yet can be withdrawn (its instance may never come back).
 */
export class OutboundRequestRepository {
  constructor(private readonly em: EntityManager) {}

  async add(instanceId: string, outboundId: string, action: OutboundAction): Promise<string> {
    const rows: Array<{ id: string }> = await this.em.query(
      `INSERT INTO outbound_requests (instance_id, outbound_id, action) VALUES ($1, $2, $3) RETURNING id::text AS id`,
      [instanceId, outboundId, action],
    );
    return (rows[0] as { id: string }).id;
  }
  /** The instance's requests not yet settled (claimed ones too: a claim cut short is taken again), oldest first. */
  async pending(instanceId: string, limit = 100): Promise<OutboundRequest[]> {
    const rows: Array<{ id: string; outbound_id: string; action: OutboundAction; requested_at: Date | string }> =
      await this.em.query(
        `SELECT id::text AS id, outbound_id, action, requested_at FROM outbound_requests
          WHERE instance_id = $1 AND done_at IS NULL ORDER BY id LIMIT $2`,
        [instanceId, limit],
      );
    return rows.map((r) => ({
      id: r.id,
      outboundId: r.outbound_id,
      action: r.action,
      requestedAt: new Date(r.requested_at),
    }));
  }
  /** Taken by its holder before carrying it out: false when it was withdrawn meanwhile. */
  async claim(id: string): Promise<boolean> {
    // In a WITH: TypeORM answers an UPDATE with its count, not its rows.
    const rows: unknown[] = await this.em.query(
      `WITH claimed AS (
         UPDATE outbound_requests SET claimed_at = now() WHERE id = $1::bigint AND done_at IS NULL RETURNING id)
       SELECT id FROM claimed`,
      [id],
    );
    return rows.length > 0;
  }
  /** A claimed request left for a later look (a cancellation that met its message on the way). */
  async release(id: string): Promise<void> {
    await this.em.query(`UPDATE outbound_requests SET claimed_at = NULL WHERE id = $1::bigint AND done_at IS NULL`, [
      id,
    ]);
  }
  /** A request carried out (or found impossible): its outcome in words. */
  async finish(id: string, outcome: string): Promise<void> {
    await this.em.query(`UPDATE outbound_requests SET done_at = now(), outcome = $2 WHERE id = $1::bigint`, [
      id,
      outcome,
    ]);
  }
  /**
   * Withdraws a tenant's request that its instance has not claimed (or claimed and then stopped
   * running, in the middle of it): it is settled as {@link WITHDRAWN_OUTCOME} and not carried out.
   */
  async withdraw(tenantId: string, id: string): Promise<WithdrawResult> {
    if (!isRequestId(id)) return 'absent';
    const rows: unknown[] = await this.em.query(
      `WITH withdrawn AS (
         UPDATE outbound_requests r SET done_at = now(), outcome = $3
           FROM outbound_messages o
          WHERE r.id = $1::bigint AND o.id = r.outbound_id AND o.tenant_id = $2
            AND r.done_at IS NULL
          AND (r.claimed_at IS NULL OR NOT EXISTS (
                SELECT 1 FROM engine_instances i WHERE i.instance_id = r.instance_id AND i.expires_at > now()))
          RETURNING r.id)
       SELECT id FROM withdrawn`,
      [id, tenantId, WITHDRAWN_OUTCOME],
    );
    if (rows.length > 0) return 'withdrawn';
    const found = await this.get(tenantId, id);
    if (!found) return 'absent';
    return found.doneAt === null ? 'claimed' : 'settled';
  }
  /** One request of a tenant's message, settled or not; null when there is none. */
  async get(tenantId: string, id: string): Promise<OutboundRequestRecord | null> {
    if (!isRequestId(id)) return null;
    const rows: RequestRecordRow[] = await this.em.query(
      `SELECT ${RECORD_COLUMNS}
         FROM outbound_requests r JOIN outbound_messages o ON o.id = r.outbound_id
        WHERE r.id = $1::bigint AND o.tenant_id = $2`,
      [id, tenantId],
    );
    const r = rows[0];
    return r ? requestRecord(r) : null;
  }
  /** A tenant's requests (of one server's messages, or of all), newest first: those still waiting, or all kept. */
  async list(
    tenantId: string,
    options: { waitingOnly: boolean; limit: number; serverId?: string | undefined },
  ): Promise<OutboundRequestRecord[]> {
    const rows: RequestRecordRow[] = await this.em.query(
      `SELECT ${RECORD_COLUMNS}
         FROM outbound_requests r JOIN outbound_messages o ON o.id = r.outbound_id
        WHERE o.tenant_id = $1 AND ($2::boolean IS FALSE OR r.done_at IS NULL)
          AND ($4::uuid IS NULL OR o.server_id = $4)
        ORDER BY r.id DESC LIMIT $3`,
      [tenantId, options.waitingOnly, options.limit, options.serverId ?? null],
    );
    return rows.map(requestRecord);
  }
  /** Requests waiting, per instance they wait for: how many, and since when the oldest. */
  async waitingByInstance(): Promise<Array<{ instanceId: string; waiting: number; oldestAt: Date }>> {
    const rows: Array<{ instance_id: string; waiting: string; oldest_at: Date | string }> = await this.em.query(
      `SELECT instance_id, count(*) AS waiting, min(requested_at) AS oldest_at
         FROM outbound_requests WHERE done_at IS NULL GROUP BY instance_id ORDER BY instance_id`,
    );
    return rows.map((r) => ({
      instanceId: r.instance_id,
      waiting: Number(r.waiting),
      oldestAt: new Date(r.oldest_at),
    }));
  }
  /** Forgets requests settled before `before`. */
  async prune(before: Date): Promise<void> {
    await this.em.query(`DELETE FROM outbound_requests WHERE done_at < $1`, [before]);
  }
}
