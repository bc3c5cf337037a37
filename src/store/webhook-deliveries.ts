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
    { name: 'webhook_deliveries_due_idx', columns: ['nextAttemptAt'], where: 'delivered_at IS NULL' },
    { name: 'webhook_deliveries_pending_seq_idx', columns: ['destinationId', 'seq'], where: 'delivered_at IS NULL' },
    { name: 'webhook_deliveries_done_age_idx', columns: ['tenantId', 'createdAt'], where: 'delivered_at IS NOT NULL' },
    { name: 'webhook_deliveries_message_idx', columns: ['messageId'] },
  ],
});

/** What a webhook run needs of an outbox row (read lean: a run reads thousands a second). */
export type WebhookRunRow = Pick<
  WebhookDeliveryRow,
  'destinationId' | 'seq' | 'tenantId' | 'messageId' | 'attempts'
> & {
  /** Its `next_attempt_at` had come when the run read it (a batch shorter than `maxEvents` goes only then). */
  due: boolean;
};

/** The run's columns; `$now` is the reading's time parameter. */
const runColumns = (now: string): string =>
  `w.destination_id, w.seq, w.tenant_id, w.message_id, w.attempts, w.next_attempt_at <= ${now} AS due`;

function runRowOf(r: RawRow): WebhookRunRow {
  return {
    destinationId: r.destination_id as string,
    seq: Number(r.seq),
    tenantId: r.tenant_id as string,
    messageId: r.message_id as string,
    attempts: Number(r.attempts),
    due: r.due === true,
  };
}

/** The destination a webhook run holds: one engine posts a destination's events at a time, in seq order. */
export interface WebhookLeaseRow {
  destinationId: string;
  leaseUntil: Date;
}

export const WebhookLeaseEntity = new EntitySchema<WebhookLeaseRow>({
  name: 'WebhookLease',
  tableName: 'webhook_leases',
  columns: {
    destinationId: { type: 'uuid', name: 'destination_id', primary: true },
    leaseUntil: { type: 'timestamptz', name: 'lease_until' },
  },
  relations: {
    destination: {
      type: 'many-to-one',
      target: 'Destination',
      joinColumn: { name: 'destination_id', foreignKeyConstraintName: 'webhook_leases_destination_fk' },
      onDelete: 'CASCADE',
    },
  } as object,
});

type RawRow = Record<string, unknown>;

/**
 * The oldest pending row of destination `t` (the only one that may be posted): one probe of
 * `webhook_deliveries_pending_seq_idx`, so reading every destination's head costs one probe per
 * destination with a webhook, not a scan of every pending row.
 */
const HEAD_OF_DESTINATION = `SELECT w.destination_id, w.seq, w.next_attempt_at, w.lease_until, w.attempts
   FROM webhook_deliveries w
   WHERE w.destination_id = t.id AND w.delivered_at IS NULL ORDER BY w.seq LIMIT 1`;

/**
 * How many rows a run of destination `t` reads at once, `$2` being `runLength`: for a batching
 * destination whole batches, as many as fit in `runLength` (at least one).
 */
const RUN_LIMIT = `COALESCE((t.webhook_batch->>'maxEvents')::int
    * GREATEST(1, $2 / (t.webhook_batch->>'maxEvents')::int), $2)`;

/**
 * Whether batching destination `t`'s head `h`, never tried, has a full batch waiting behind it
 * (it then falls due before its `maxWaitMs`): counts at most `maxEvents` pending rows, by the
 * pending-seq index.
 */
const FULL_BATCH = `(h.attempts = 0 AND t.webhook_batch IS NOT NULL AND (
     SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries b
       WHERE b.destination_id = t.id AND b.delivered_at IS NULL
       ORDER BY b.seq LIMIT (t.webhook_batch->>'maxEvents')::int) f) >= (t.webhook_batch->>'maxEvents')::int)`;
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

  /**
   * Queues the given deliveries of a destination, if (and only if) it has a webhook URL. A
   * batching destination's rows fall due `maxWaitMs` from now (sooner when `maxEvents` wait: see
   * claimRuns).
   */
  async enqueue(destinationId: string, seqs: number[]): Promise<void> {
    if (seqs.length === 0) return;
    await this.em.query(
      `INSERT INTO webhook_deliveries (destination_id, seq, tenant_id, message_id, next_attempt_at)
       SELECT d.destination_id, d.seq, d.tenant_id, d.message_id,
              now() + make_interval(secs => COALESCE((t.webhook_batch->>'maxWaitMs')::int, 0) / 1000.0)
         FROM inbound_deliveries d JOIN destinations t ON t.id = d.destination_id
        WHERE d.destination_id = $1 AND d.seq = ANY($2::bigint[]) AND t.webhook_url IS NOT NULL
       ON CONFLICT (destination_id, seq) DO NOTHING`,
      [destinationId, seqs],
    );
  }

  /**
   * Claims up to `destinations` destinations whose oldest pending row is due and that no run
   * holds, round-robin over tenants and at most `perTenant` runs of one tenant at once (counting
   * the runs other instances hold), leasing each destination (not its rows) until `leaseUntil`, and reads the first
   * `runLength` pending rows of each (a batching destination's whole batches; its head is due at
   * `next_attempt_at`, or sooner when never tried and a full batch waits). Two statements on purpose: the rows are read after the
   * lease is taken, so a run that ended just before (its deliveries committed, then its lease
   * given back) is seen whole. A lease is taken by one engine alone: the insert of a lapsed or
   * absent lease waits for a concurrent one and then finds it live. Rows of each run in seq
   * order; runs each tenant's first, then each tenant's second, … by when their head fell due.
   */
  async claimRuns(
    now: Date,
    leaseUntil: Date,
    destinations: number,
    runLength: number,
    perTenant: number,
  ): Promise<WebhookRunRow[][]> {
    const leased: RawRow[] = await this.em.query(
      `WITH busy AS (
         SELECT t.tenant_id, count(*) AS runs FROM webhook_leases l JOIN destinations t ON t.id = l.destination_id
          WHERE l.lease_until > $1 GROUP BY t.tenant_id),
       due AS (
         SELECT t.id AS destination_id, t.tenant_id, h.next_attempt_at, h.seq,
                row_number() OVER (PARTITION BY t.tenant_id ORDER BY h.next_attempt_at, h.seq) AS place
           FROM destinations t
          CROSS JOIN LATERAL (${HEAD_OF_DESTINATION}) h
           LEFT JOIN webhook_leases l ON l.destination_id = t.id
          WHERE t.webhook_url IS NOT NULL AND (h.next_attempt_at <= $1 OR ${FULL_BATCH})
            AND (l.lease_until IS NULL OR l.lease_until <= $1)
            -- a row lease of an engine from before destination leases (migration 0030)
            AND (h.lease_until IS NULL OR h.lease_until <= $1)),
       heads AS (
         SELECT d.destination_id, d.next_attempt_at, d.seq, d.place FROM due d LEFT JOIN busy b USING (tenant_id)
          WHERE d.place + COALESCE(b.runs, 0) <= $4
          ORDER BY d.place, d.next_attempt_at, d.seq
          LIMIT $3),
       leased AS (
         INSERT INTO webhook_leases (destination_id, lease_until)
         SELECT destination_id, $2 FROM heads
         ON CONFLICT (destination_id) DO UPDATE SET lease_until = EXCLUDED.lease_until
          WHERE webhook_leases.lease_until <= $1
         RETURNING destination_id)
       SELECT h.destination_id FROM heads h JOIN leased USING (destination_id)
        ORDER BY h.place, h.next_attempt_at, h.seq`,
      [now, leaseUntil, destinations, perTenant],
    );
    if (leased.length === 0) return [];
    const rows: RawRow[] = await this.em.query(
      `SELECT r.* FROM unnest($1::uuid[]) WITH ORDINALITY AS d(id, n)
        JOIN destinations t ON t.id = d.id
        CROSS JOIN LATERAL (
          SELECT ${runColumns('$3')} FROM webhook_deliveries w
           WHERE w.destination_id = d.id AND w.delivered_at IS NULL
           ORDER BY w.seq LIMIT ${RUN_LIMIT}) r
        ORDER BY d.n, r.seq`,
      [leased.map((r) => r.destination_id), runLength, now],
    );
    const runs = new Map<string, WebhookRunRow[]>();
    for (const r of rows) {
      const row = runRowOf(r);
      const run = runs.get(row.destinationId);
      if (run) run.push(row);
      else runs.set(row.destinationId, [row]);
    }
    // A destination leased with nothing left to post (delivered meanwhile) is given back at once.
    const empty = leased.map((r) => r.destination_id as string).filter((id) => !runs.has(id));
    for (const id of empty) await this.releaseRun(id, leaseUntil);
    return [...runs.values()];
  }

  /**
   * The next `limit` pending rows of a destination after `afterSeq`, for the run that holds the
   * destination's lease `leaseUntil` (none once the lease is no longer that run's).
   */
  async extendRun(
    destinationId: string,
    afterSeq: number,
    leaseUntil: Date,
    limit: number,
    now: Date,
  ): Promise<WebhookRunRow[]> {
    const rows: RawRow[] = await this.em.query(
      `SELECT ${runColumns('$5')} FROM webhook_deliveries w
        WHERE w.destination_id = $1 AND w.delivered_at IS NULL AND w.seq > $2
          AND EXISTS (SELECT 1 FROM webhook_leases l WHERE l.destination_id = $1 AND l.lease_until = $3)
        ORDER BY w.seq LIMIT $4`,
      [destinationId, afterSeq, leaseUntil, limit, now],
    );
    return rows.map(runRowOf);
  }

  /**
   * Records 2xx answers of one destination's events (one statement for a batch), committed
   * without waiting for the write-ahead log to reach the disk (`synchronous_commit off`): a
   * commit that waits costs one flush of the disk (~10 ms here, measured), as long as posting
   * ~60 events. What such a commit can lose is only this record, in a crash of PostgreSQL
   * itself: the events are then posted again under the same `Idempotency-Key`, which the
   * at-least-once promise already allows. Leases and failures stay synchronous. The trace's
   * `webhook-delivered` event is read from these rows (TraceRepository.timeline), not copied.
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
            SET attempts = w.attempts + 1, delivered_at = u.at, last_attempt_at = u.at, last_status = u.status
           FROM unnest($2::bigint[], $3::timestamptz[], $4::integer[]) AS u(seq, at, status)
          WHERE w.destination_id = $1 AND w.seq = u.seq`,
        [destinationId, done.map((d) => d.seq), done.map((d) => d.at), done.map((d) => d.status)],
      );
    });
  }

  /**
   * Makes a destination's events that wait for a batch (never tried, due later) due now: after
   * its `webhookBatch` changed, nothing waits for a `maxWaitMs` no longer asked for.
   */
  async dueNow(destinationId: string): Promise<void> {
    await this.em.query(
      `UPDATE webhook_deliveries SET next_attempt_at = now()
        WHERE destination_id = $1 AND delivered_at IS NULL AND attempts = 0 AND next_attempt_at > now()`,
      [destinationId],
    );
  }

  /** Gives a destination back at the end of a run, if the lease is still that run's. */
  async releaseRun(destinationId: string, leaseUntil: Date): Promise<void> {
    await this.em.query(`DELETE FROM webhook_leases WHERE destination_id = $1 AND lease_until = $2`, [
      destinationId,
      leaseUntil,
    ]);
  }

  async recordFailure(
    destinationId: string,
    seq: number,
    failure: { at: Date; status: number | null; error: string; nextAttemptAt: Date },
  ): Promise<void> {
    await this.em.query(
      `WITH f AS (
         UPDATE webhook_deliveries
            SET attempts = attempts + 1, last_attempt_at = $3, last_status = $4, last_error = $5, last_error_at = $3,
                next_attempt_at = $6
          WHERE destination_id = $1 AND seq = $2
          RETURNING tenant_id, message_id, attempts)
       INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
       SELECT tenant_id, message_id, $3, 'webhook-failed',
              jsonb_build_object('destinationId', $1::text, 'attempt', attempts, 'status', $4::integer,
                                 'error', $5::text, 'nextAttemptAt', $6::timestamptz)
         FROM f`,
      [destinationId, seq, failure.at, failure.status, failure.error, failure.nextAttemptAt],
    );
  }

  /** When the earliest claimable row (a destination's oldest pending one) falls due; null when none. */
  async nextDueAt(): Promise<Date | null> {
    const rows: RawRow[] = await this.em.query(
      `SELECT MIN(GREATEST(h.next_attempt_at, l.lease_until, h.lease_until)) AS due
         FROM destinations t CROSS JOIN LATERAL (${HEAD_OF_DESTINATION}) h
         LEFT JOIN webhook_leases l ON l.destination_id = t.id
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
