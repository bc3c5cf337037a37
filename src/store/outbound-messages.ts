import { In, IsNull, Not, type EntityManager } from 'typeorm';
import { OutboundMessageEntity } from './entities.js';
import { withoutNul } from './inbound-repositories.js';
import type { AcceptedRecipient, OutboundMessageRow, RefusedRecipient } from './rows.js';

/** Statuses of messages still to be sent. */
const WAITING: Array<OutboundMessageRow['status']> = ['queued', 'sending', 'deferred'];

/** One delivery the server acknowledged with 250, as `recordSent` writes it. */
export interface SentRecord {
  id: string;
  sentAt: Date;
  reply: string;
  responseCode: number;
  attempts: number;
  firstAttemptAt: Date;
}

/** What the send API needs of a destination, and the version of its row. */
export interface SendingDestination {
  id: string;
  tenantId: string;
  name: string;
  fromText: string;
  address: string;
  outgoing: boolean;
  serverId: string | null;
  /** The row's `xmin`: changes whenever the row is updated. */
  version: string;
}

/** An accepted message's status row; with `destinationVersion`, inserted only while the destination has it. */
export interface AcceptedRow {
  row: Omit<OutboundMessageRow, 'updatedAt'>;
  destinationVersion: string | null;
  /**
   * Trace events written with the row, in the same statement (the message's `accepted` and
   * `rendered`, the `reply-accepted` of the message it answers): `messageId` null means this one.
   */
  trace?: ReadonlyArray<{ messageId: string | null; type: string; detail: Record<string, unknown> | null }>;
}

export class OutboundMessageRepository {
  constructor(private readonly em: EntityManager) {}

  async insert(row: Omit<OutboundMessageRow, 'createdAt' | 'updatedAt'>): Promise<void> {
    await this.em.insert(OutboundMessageEntity, row as Parameters<EntityManager['insert']>[1]);
  }
  /**
   * A destination as the send API reads it, with its row version (PostgreSQL's `xmin`, which
   * changes with every update of the row): an accept may compose with a remembered copy and have
   * `insertMany` check that the row has not changed since.
   */
  async sendingDestination(tenantId: string, id: string): Promise<SendingDestination | null> {
    const rows: Array<{
      name: string;
      from_text: string;
      address: string;
      outgoing: boolean;
      server_id: string | null;
      version: string;
    }> = await this.em.query(
      `SELECT name, from_text, address, outgoing, server_id, xmin::text AS version
         FROM destinations WHERE tenant_id = $1 AND id = $2`,
      [tenantId, id],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      id,
      tenantId,
      name: row.name,
      fromText: row.from_text,
      address: row.address,
      outgoing: row.outgoing,
      serverId: row.server_id,
      version: row.version,
    };
  }
  /**
   * Inserts several accepted messages in one statement (group commit of concurrent sends); each
   * row's `createdAt` is given, so the answer to the sender needs no second read. A row with a
   * `destinationVersion` is inserted only while its destination still has that version (it was
   * composed from a remembered copy of the destination). Resolves with the ids inserted.
   */
  async insertMany(rows: ReadonlyArray<AcceptedRow>): Promise<Set<string>> {
    if (rows.length === 0) return new Set();
    // The batch goes as one JSON parameter (one JSON.stringify) rather than 18 parameters a row,
    // each converted by the driver: a third of the database work of an accept on the event loop.
    const batch = rows.map(({ row: r, destinationVersion, trace }) =>
      withoutNul({
        trace: (trace ?? []).map((t) => ({ m: t.messageId ?? r.id, y: t.type, z: t.detail })),
        id: r.id,
        tenant_id: r.tenantId,
        destination_id: r.destinationId,
        server_id: r.serverId,
        status: r.status,
        message_id_header: r.messageIdHeader,
        conversation_id: r.conversationId,
        subject: r.subject,
        recipients: r.recipients,
        attempts: r.attempts,
        last_reply: r.lastReply,
        last_response_code: r.lastResponseCode,
        next_attempt_at: r.nextAttemptAt,
        created_at: r.createdAt,
        first_attempt_at: r.firstAttemptAt,
        sent_at: r.sentAt,
        instance_id: r.instanceId,
        destination_version: destinationVersion,
      }),
    );
    const inserted: Array<{ id: string }> = await this.em.query(
      `WITH v AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS v (id uuid, tenant_id uuid, destination_id uuid,
         server_id uuid, status text, message_id_header text, conversation_id uuid, subject text, recipients jsonb,
         attempts integer, last_reply text, last_response_code integer, next_attempt_at timestamptz,
         created_at timestamptz, first_attempt_at timestamptz, sent_at timestamptz, instance_id text,
         destination_version text, trace jsonb)),
       ins AS (INSERT INTO outbound_messages (id, tenant_id, destination_id, server_id, status, message_id_header,
         conversation_id, subject, recipients, attempts, last_reply, last_response_code, next_attempt_at,
         created_at, first_attempt_at, sent_at, instance_id)
       SELECT id, tenant_id, destination_id, server_id, status, message_id_header, conversation_id, subject,
         recipients, attempts, last_reply, last_response_code, next_attempt_at, created_at, first_attempt_at,
         sent_at, instance_id
       FROM v
       WHERE v.destination_version IS NULL
          OR EXISTS (SELECT 1 FROM destinations d
                      WHERE d.id = v.destination_id AND d.xmin::text = v.destination_version)
       RETURNING id),
       tr AS (INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
              SELECT v.tenant_id, t.m, v.created_at, t.y, t.z
                FROM ins JOIN v ON v.id = ins.id
                CROSS JOIN LATERAL jsonb_to_recordset(v.trace) AS t(m uuid, y text, z jsonb))
       SELECT id FROM ins`,
      [JSON.stringify(batch)],
    );
    return new Set(inserted.map((r) => r.id));
  }
  /**
   * Records several deliveries (the server's 250) in one statement: each status row becomes
   * `sent` and the send log the hourly rate limit reads gets one line per message, in place of
   * the place the limit took for it before the send (`SendLogRepository.reserve`). The commit is
   * synchronous: once this resolves the records survive a crash of the database server too, and
   * the messages' spool files may go.
   */
  async recordSent(entries: ReadonlyArray<SentRecord>): Promise<void> {
    if (entries.length === 0) return;
    // One JSON parameter for the batch, as in insertMany.
    const batch = entries.map((e) =>
      withoutNul({
        id: e.id,
        sent_at: e.sentAt,
        reply: e.reply,
        code: e.responseCode,
        attempts: e.attempts,
        first_attempt_at: e.firstAttemptAt,
      }),
    );
    await this.em.query(
      `WITH v AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb)
           AS r (id uuid, sent_at timestamptz, reply text, code integer, attempts integer, first_attempt_at timestamptz)),
       done AS (
         UPDATE outbound_messages o SET status = 'sent', sent_at = v.sent_at, last_reply = v.reply,
           last_response_code = v.code, attempts = v.attempts, first_attempt_at = v.first_attempt_at,
           next_attempt_at = NULL, updated_at = now()
         FROM v WHERE o.id = v.id
         RETURNING o.id, o.tenant_id, o.server_id, v.sent_at),
       released AS (DELETE FROM smtp_send_log l USING v WHERE l.outbound_id = v.id AND NOT l.recorded),
       tr AS (INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
              SELECT done.tenant_id, done.id, done.sent_at, 'sent',
                     jsonb_build_object('serverId', done.server_id, 'attempt', v.attempts, 'code', v.code,
                                        'reply', v.reply)
                FROM done JOIN v ON v.id = done.id)
       INSERT INTO smtp_send_log (server_id, sent_at, outbound_id) SELECT server_id, sent_at, id FROM done`,
      [JSON.stringify(batch)],
    );
  }

  async insertMissing(row: Omit<OutboundMessageRow, 'createdAt' | 'updatedAt'>): Promise<void> {
    await this.em
      .createQueryBuilder()
      .insert()
      .into(OutboundMessageEntity)
      .values(row as Parameters<EntityManager['insert']>[1])
      .orIgnore()
      .execute();
  }
  async delete(id: string): Promise<void> {
    await this.em.delete(OutboundMessageEntity, { id });
  }
  get(tenantId: string, id: string): Promise<OutboundMessageRow | null> {
    return this.em.findOneBy(OutboundMessageEntity, { tenantId, id });
  }
  byId(id: string): Promise<OutboundMessageRow | null> {
    return this.em.findOneBy(OutboundMessageEntity, { id });
  }
  async update(id: string, patch: Partial<Omit<OutboundMessageRow, 'id'>>): Promise<void> {
    await this.em.update(OutboundMessageEntity, { id }, patch as Parameters<EntityManager['update']>[2]);
  }
  /** Messages of this instance never attempted yet: each should have a spool file. */
  listQueuedOf(instanceId: string): Promise<OutboundMessageRow[]> {
    return this.em.find(OutboundMessageEntity, { where: { instanceId, status: 'queued', attempts: 0 } });
  }
  listDeferred(serverId: string): Promise<OutboundMessageRow[]> {
    return this.em.find(OutboundMessageEntity, { where: { serverId, status: 'deferred' } });
  }
  countByStatus(serverId: string, status: OutboundMessageRow['status']): Promise<number> {
    return this.em.countBy(OutboundMessageEntity, { serverId, status });
  }
  /** Messages accepted for a server and not yet sent or given up (queued, sending, deferred), on any instance. */
  countWaiting(serverId: string): Promise<number> {
    return this.em.countBy(OutboundMessageEntity, { serverId, status: In(WAITING) });
  }
  /** Gives up every message still waiting for a server (its deletion): `failed`, with why. Returns how many. */
  async failWaiting(serverId: string, reply: string): Promise<number> {
    const result = await this.em.update(
      OutboundMessageEntity,
      { serverId, status: In(WAITING) },
      { status: 'failed', lastReply: reply, nextAttemptAt: null },
    );
    return result.affected ?? 0;
  }
  /** Dead letters on record (any instance's): of one server, or of every server of a tenant, deleted ones too; oldest first. */
  async listDeadLetters(tenantId: string, serverId?: string): Promise<OutboundMessageRow[]> {
    return this.em.find(OutboundMessageEntity, {
      where: { tenantId, ...(serverId !== undefined && { serverId }), deadLetteredAt: Not(IsNull()) },
      order: { deadLetteredAt: 'ASC', id: 'ASC' },
    });
  }
  /**
   * Makes the dead-letter marks of one instance's rows what its spool holds: `ids` are the dead
   * letters in its folders now (marked, at `at`, if they were not), every other row of the
   * instance loses its mark (its file was re-queued or deleted by hand).
   */
  async syncDeadLetters(instanceId: string, ids: readonly string[], at: Date): Promise<void> {
    const list = JSON.stringify(ids);
    await this.em.query(
      `UPDATE outbound_messages SET dead_lettered_at = $3
        WHERE instance_id = $1 AND dead_lettered_at IS NULL
          AND id IN (SELECT jsonb_array_elements_text($2::jsonb)::uuid)`,
      [instanceId, list, at],
    );
    await this.em.query(
      `UPDATE outbound_messages SET dead_lettered_at = NULL
        WHERE instance_id = $1 AND dead_lettered_at IS NOT NULL
          AND id NOT IN (SELECT jsonb_array_elements_text($2::jsonb)::uuid)`,
      [instanceId, list],
    );
  }
  /** Marks one message failed unless it was sent meanwhile. */
  /**
   * A failed attempt's outcome: the row becomes `deferred` with `patch`, unless it was failed
   * meanwhile by something other than its queue (its instance retired, a cancellation): that stays.
   */
  async deferUnlessFailed(
    id: string,
    patch: Pick<OutboundMessageRow, 'nextAttemptAt' | 'lastReply' | 'lastResponseCode' | 'attempts' | 'firstAttemptAt'>,
    trace?: { type: string; at: Date },
  ): Promise<void> {
    if (!trace) {
      await this.em.update(OutboundMessageEntity, { id, status: Not('failed') }, { ...patch, status: 'deferred' });
      return;
    }
    // The attempt's event in the same statement: a row that was failed meanwhile gets neither.
    await this.em.query(
      `WITH d AS (
         UPDATE outbound_messages SET status = 'deferred', next_attempt_at = $2, last_reply = $3,
                last_response_code = $4, attempts = $5, first_attempt_at = $6, updated_at = now()
          WHERE id = $1 AND status <> 'failed'
          RETURNING id, tenant_id, server_id)
       INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
       SELECT tenant_id, id, $7, $8,
              jsonb_build_object('serverId', server_id, 'attempt', $5::integer, 'code', $4::integer,
                                 'reply', $3::text, 'nextAttemptAt', $2::timestamptz)
         FROM d`,
      [
        id,
        patch.nextAttemptAt,
        withoutNul(patch.lastReply),
        patch.lastResponseCode,
        patch.attempts,
        patch.firstAttemptAt,
        trace.at,
        trace.type,
      ],
    );
  }

  /** Adds recipients the server refused for good while it took the message for the others. */
  async addRefusedRecipients(id: string, refused: readonly RefusedRecipient[]): Promise<void> {
    if (refused.length === 0) return;
    await this.em.query(
      `UPDATE outbound_messages SET refused_recipients = refused_recipients || $2::jsonb, updated_at = now()
        WHERE id = $1`,
      [id, JSON.stringify(withoutNul(refused))],
    );
  }

  /** Remembers the recipients an attempt delivered to while others wait (the file is narrowed to those). */
  async addAcceptedRecipients(id: string, accepted: readonly AcceptedRecipient[]): Promise<void> {
    if (accepted.length === 0) return;
    await this.em.query(
      `UPDATE outbound_messages SET accepted_recipients = accepted_recipients || $2::jsonb, updated_at = now()
        WHERE id = $1`,
      [id, JSON.stringify(withoutNul(accepted))],
    );
  }

  /**
   * Marks one message failed unless it was sent meanwhile; traced as `type` (with `detail`) when it
   * was. `reply` is Mailroom's own (a cancel, a deleted server): no SMTP code goes with it, so an
   * earlier attempt's (a 451 deferral) is cleared rather than shown beside it.
   */
  async failUnlessSent(
    id: string,
    reply: string,
    deadLetteredAt: Date | null = null,
    trace: { type: string; detail?: Record<string, unknown> } = { type: 'failed' },
  ): Promise<void> {
    await this.em.query(
      `WITH f AS (
         UPDATE outbound_messages SET status = 'failed', last_reply = $2, last_response_code = NULL,
                next_attempt_at = NULL, updated_at = now(), dead_lettered_at = $3
          WHERE id = $1 AND status <> 'sent'
          RETURNING id, tenant_id, server_id)
       INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
       SELECT tenant_id, id, COALESCE($3, now()), $4, jsonb_build_object('serverId', server_id, 'reply', $2::text) || $5::jsonb
         FROM f`,
      [id, reply, deadLetteredAt, trace.type, JSON.stringify(withoutNul(trace.detail ?? {}))],
    );
  }

  /** A message given up after an attempt (a permanent reply, or retried too long): failed and dead-lettered. */
  async deadLetter(
    id: string,
    patch: Pick<OutboundMessageRow, 'lastReply' | 'lastResponseCode' | 'attempts' | 'firstAttemptAt'>,
    at: Date,
  ): Promise<void> {
    await this.em.query(
      `WITH f AS (
         UPDATE outbound_messages SET status = 'failed', next_attempt_at = NULL, dead_lettered_at = $2,
                last_reply = $3, last_response_code = $4, attempts = $5, first_attempt_at = $6, updated_at = now()
          WHERE id = $1
          RETURNING id, tenant_id, server_id)
       INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
       SELECT tenant_id, id, $2, 'dead-lettered',
              jsonb_build_object('serverId', server_id, 'attempt', $5::integer, 'code', $4::integer, 'reply', $3::text)
         FROM f`,
      [id, at, withoutNul(patch.lastReply), patch.lastResponseCode, patch.attempts, patch.firstAttemptAt],
    );
  }
}
