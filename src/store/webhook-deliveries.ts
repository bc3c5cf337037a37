import { EntitySchema, type EntityManager } from 'typeorm';

/** The sealing field of a destination's webhook secret (`destinations.webhook_secret_sealed`). */
export const WEBHOOK_SECRET_FIELD = 'webhookSecret';

/**
 * The webhook outbox: one row per (destination, seq) of a destination with a webhook, written in
 * the transaction that routes the message, so a crash loses nothing. A row is pending until a
 * POST answered 2xx (`deliveredAt`); it is never dropped.
 */
export interface WebhookDeliveryRow {
  destinationId: string;
  /** The message's position in the destination's queue (`inbound_deliveries.seq`). */
  seq: number;
  tenantId: string;
  messageId: string;
  /** POSTs made so far, the successful one included. */
  attempts: number;
  nextAttemptAt: Date;
  /** While set and in the future, one dispatcher holds the row (a crashed one's lease expires). */
  leaseUntil: Date | null;
  lastAttemptAt: Date | null;
  /** HTTP status of the last answer; null when there was none (refused, timed out). */
  lastStatus: number | null;
  /** The last failure in words; kept after a later success, as history. */
  lastError: string | null;
  lastErrorAt: Date | null;
  deliveredAt: Date | null;
  createdAt: Date;
}

const bigintAsNumber = { to: (v: unknown) => v, from: (v: unknown) => (v === null ? null : Number(v)) };
const time = (name: string, nullable = true) => ({ type: 'timestamptz', name, nullable }) as const;

export const WebhookDeliveryEntity = new EntitySchema<WebhookDeliveryRow>({
  name: 'WebhookDelivery',
  tableName: 'webhook_deliveries',
  columns: {
    destinationId: { type: 'uuid', name: 'destination_id', primary: true },
    seq: { type: 'bigint', name: 'seq', primary: true, transformer: bigintAsNumber },
    tenantId: { type: 'uuid', name: 'tenant_id' },
    messageId: { type: 'uuid', name: 'message_id' },
    attempts: { type: 'integer', name: 'attempts', default: 0 },
    nextAttemptAt: { type: 'timestamptz', name: 'next_attempt_at', default: () => 'now()' },
    leaseUntil: time('lease_until'),
    lastAttemptAt: time('last_attempt_at'),
    lastStatus: { type: 'integer', name: 'last_status', nullable: true },
    lastError: { type: 'text', name: 'last_error', nullable: true },
    lastErrorAt: time('last_error_at'),
    deliveredAt: time('delivered_at'),
    createdAt: { type: 'timestamptz', name: 'created_at', createDate: true },
  },
  relations: {
    destination: {
      type: 'many-to-one',
      target: 'Destination',
      joinColumn: { name: 'destination_id', foreignKeyConstraintName: 'webhook_deliveries_destination_fk' },
      onDelete: 'CASCADE',
    },
    message: {
      type: 'many-to-one',
      target: 'InboundMessage',
      joinColumn: { name: 'message_id', foreignKeyConstraintName: 'webhook_deliveries_message_fk' },
      onDelete: 'CASCADE',
    },
  } as object,
  indices: [
    { name: 'webhook_deliveries_pending_idx', columns: ['deliveredAt', 'nextAttemptAt'] },
    { name: 'webhook_deliveries_pending_seq_idx', columns: ['destinationId', 'seq'], where: 'delivered_at IS NULL' },
    { name: 'webhook_deliveries_done_age_idx', columns: ['tenantId', 'createdAt'], where: 'delivered_at IS NOT NULL' },
    { name: 'webhook_deliveries_message_idx', columns: ['messageId'] },
  ],
});

type RawRow = Record<string, unknown>;

/**
 * The oldest pending row of destination `t` (the only one that may be posted): one probe of
 * `webhook_deliveries_pending_seq_idx`, so reading every destination's head costs one probe per
 * destination with a webhook, not a scan of every pending row.
 */
const HEAD_OF_DESTINATION = `SELECT w.destination_id, w.seq, w.next_attempt_at, w.lease_until FROM webhook_deliveries w
   WHERE w.destination_id = t.id AND w.delivered_at IS NULL ORDER BY w.seq LIMIT 1`;
const dateOrNull = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string));

function rowOf(r: RawRow): WebhookDeliveryRow {
  return {
    destinationId: r.destination_id as string,
    seq: Number(r.seq),
    tenantId: r.tenant_id as string,
    messageId: r.message_id as string,
    attempts: Number(r.attempts),
    nextAttemptAt: new Date(r.next_attempt_at as string),
    leaseUntil: dateOrNull(r.lease_until),
    lastAttemptAt: dateOrNull(r.last_attempt_at),
    lastStatus: r.last_status === null ? null : Number(r.last_status),
    lastError: (r.last_error as string | null) ?? null,
    lastErrorAt: dateOrNull(r.last_error_at),
    deliveredAt: dateOrNull(r.delivered_at),
    createdAt: new Date(r.created_at as string),
  };
}

export interface WebhookQueueSummary {
  pending: number;
  delivered: number;
  lastDeliveredAt: Date | null;
  /** The oldest pending row: the one every later row of the destination waits behind. */
  head: WebhookDeliveryRow | null;
}

export class WebhookDeliveryRepository {
  constructor(private readonly em: EntityManager) {}

  /** Queues the given deliveries of a destination, if (and only if) it has a webhook URL. */
  async enqueue(destinationId: string, seqs: number[]): Promise<void> {
    if (seqs.length === 0) return;
    await this.em.query(
      `INSERT INTO webhook_deliveries (destination_id, seq, tenant_id, message_id)
       SELECT d.destination_id, d.seq, d.tenant_id, d.message_id
         FROM inbound_deliveries d JOIN destinations t ON t.id = d.destination_id
        WHERE d.destination_id = $1 AND d.seq = ANY($2::bigint[]) AND t.webhook_url IS NOT NULL
       ON CONFLICT (destination_id, seq) DO NOTHING`,
      [destinationId, seqs],
    );
  }

  /**
   * Leases runs of consecutive pending rows, at most `runLength` each, of up to `destinations`
   * destinations whose oldest pending row is due and free (so a destination's events go out in
   * seq order, by one dispatcher at a time). `SKIP LOCKED` on the head and the lease on the whole
   * run keep two engines off the same destination: the next head is leased too. Rows of each run
   * in seq order, runs by when their head fell due.
   */
  async claimRuns(
    now: Date,
    leaseUntil: Date,
    destinations: number,
    runLength: number,
  ): Promise<WebhookDeliveryRow[][]> {
    const rows: RawRow[] = await this.em.query(
      `WITH heads AS (
         SELECT h.destination_id, h.seq FROM destinations t
          CROSS JOIN LATERAL (${HEAD_OF_DESTINATION}) h
          WHERE t.webhook_url IS NOT NULL AND h.next_attempt_at <= $1 AND (h.lease_until IS NULL OR h.lease_until <= $1)
          ORDER BY h.next_attempt_at, h.seq
          LIMIT $3),
       locked AS (
         SELECT c.destination_id, c.seq, c.next_attempt_at FROM webhook_deliveries c
          WHERE (c.destination_id, c.seq) IN (SELECT destination_id, seq FROM heads)
            AND c.delivered_at IS NULL AND (c.lease_until IS NULL OR c.lease_until <= $1)
          FOR UPDATE OF c SKIP LOCKED),
       run AS (
         SELECT r.destination_id, r.seq, h.next_attempt_at AS head_due FROM locked h
          CROSS JOIN LATERAL (
            SELECT w.destination_id, w.seq FROM webhook_deliveries w
             WHERE w.destination_id = h.destination_id AND w.delivered_at IS NULL AND w.seq >= h.seq
             ORDER BY w.seq LIMIT $4) r),
       claimed AS (
         UPDATE webhook_deliveries w SET lease_until = $2
           FROM run WHERE w.destination_id = run.destination_id AND w.seq = run.seq
         RETURNING w.*, run.head_due)
       SELECT * FROM claimed ORDER BY head_due, destination_id, seq`,
      [now, leaseUntil, destinations, runLength],
    );
    const runs = new Map<string, WebhookDeliveryRow[]>();
    for (const r of rows) {
      const row = rowOf(r);
      const run = runs.get(row.destinationId);
      if (run) run.push(row);
      else runs.set(row.destinationId, [row]);
    }
    return [...runs.values()];
  }

  /**
   * Leases the next `limit` pending rows of a destination after `afterSeq`, for a run that holds
   * the destination already (its head is leased by the caller, so no one else posts them).
   */
  async extendRun(
    destinationId: string,
    afterSeq: number,
    leaseUntil: Date,
    limit: number,
  ): Promise<WebhookDeliveryRow[]> {
    const rows: RawRow[] = await this.em.query(
      `WITH leased AS (
         UPDATE webhook_deliveries w SET lease_until = $3
          WHERE w.destination_id = $1 AND w.seq IN (
            SELECT n.seq FROM webhook_deliveries n
             WHERE n.destination_id = $1 AND n.delivered_at IS NULL AND n.seq > $2
             ORDER BY n.seq LIMIT $4)
         RETURNING w.*)
       SELECT * FROM leased ORDER BY seq`,
      [destinationId, afterSeq, leaseUntil, limit],
    );
    return rows.map(rowOf);
  }

  /**
   * Records 2xx answers of one destination's events (one statement for a batch), committed
   * without waiting for the write-ahead log to reach the disk (`synchronous_commit off`): a
   * commit that waits costs one flush of the disk (~10 ms here, measured), as long as posting
   * ~60 events. What such a commit can lose is only this record, in a crash of PostgreSQL
   * itself: the events are then posted again under the same `Idempotency-Key`, which the
   * at-least-once promise already allows. Leases and failures stay synchronous.
   */
  async recordSuccesses(
    destinationId: string,
    done: ReadonlyArray<{ seq: number; at: Date; status: number }>,
  ): Promise<void> {
    if (done.length === 0) return;
    await this.em.transaction(async (em) => {
      await em.query('SET LOCAL synchronous_commit TO OFF');
      await em.query(
        `UPDATE webhook_deliveries w
            SET attempts = w.attempts + 1, delivered_at = u.at, last_attempt_at = u.at, last_status = u.status,
                lease_until = NULL
           FROM unnest($2::bigint[], $3::timestamptz[], $4::integer[]) AS u(seq, at, status)
          WHERE w.destination_id = $1 AND w.seq = u.seq`,
        [destinationId, done.map((d) => d.seq), done.map((d) => d.at), done.map((d) => d.status)],
      );
    });
  }

  /** Gives back rows of a run that were not posted, if this lease still holds them. */
  async release(destinationId: string, seqs: readonly number[], leaseUntil: Date): Promise<void> {
    if (seqs.length === 0) return;
    await this.em.query(
      `UPDATE webhook_deliveries SET lease_until = NULL
        WHERE destination_id = $1 AND seq = ANY($2::bigint[]) AND lease_until = $3 AND delivered_at IS NULL`,
      [destinationId, seqs, leaseUntil],
    );
  }

  async recordFailure(
    destinationId: string,
    seq: number,
    failure: { at: Date; status: number | null; error: string; nextAttemptAt: Date },
  ): Promise<void> {
    await this.em.query(
      `UPDATE webhook_deliveries
          SET attempts = attempts + 1, last_attempt_at = $3, last_status = $4, last_error = $5, last_error_at = $3,
              next_attempt_at = $6, lease_until = NULL
        WHERE destination_id = $1 AND seq = $2`,
      [destinationId, seq, failure.at, failure.status, failure.error, failure.nextAttemptAt],
    );
  }

  /** When the earliest claimable row (a destination's oldest pending one) falls due; null when none. */
  async nextDueAt(): Promise<Date | null> {
    const rows: RawRow[] = await this.em.query(
      `SELECT MIN(GREATEST(h.next_attempt_at, COALESCE(h.lease_until, h.next_attempt_at))) AS due
         FROM destinations t CROSS JOIN LATERAL (${HEAD_OF_DESTINATION}) h
        WHERE t.webhook_url IS NOT NULL`,
    );
    return dateOrNull(rows[0]?.due);
  }

  async summary(destinationId: string): Promise<WebhookQueueSummary> {
    const counts: RawRow[] = await this.em.query(
      `SELECT COUNT(*) FILTER (WHERE delivered_at IS NULL) AS pending,
              COUNT(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
              MAX(delivered_at) AS last_delivered_at
         FROM webhook_deliveries WHERE destination_id = $1`,
      [destinationId],
    );
    const head: RawRow[] = await this.em.query(
      `SELECT * FROM webhook_deliveries WHERE destination_id = $1 AND delivered_at IS NULL ORDER BY seq LIMIT 1`,
      [destinationId],
    );
    const c = counts[0] ?? {};
    return {
      pending: Number(c.pending ?? 0),
      delivered: Number(c.delivered ?? 0),
      lastDeliveredAt: dateOrNull(c.last_delivered_at),
      head: head[0] ? rowOf(head[0]) : null,
    };
  }

  /** Rows that failed at least once, most recent failure first. */
  async recentFailures(destinationId: string, limit: number): Promise<WebhookDeliveryRow[]> {
    const rows: RawRow[] = await this.em.query(
      `SELECT * FROM webhook_deliveries WHERE destination_id = $1 AND last_error_at IS NOT NULL
        ORDER BY last_error_at DESC, seq DESC LIMIT $2`,
      [destinationId, limit],
    );
    return rows.map(rowOf);
  }

  get(destinationId: string, seq: number): Promise<WebhookDeliveryRow | null> {
    return this.em.findOneBy(WebhookDeliveryEntity, { destinationId, seq });
  }
}
