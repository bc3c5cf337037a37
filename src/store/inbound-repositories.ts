import { In, type EntityManager } from 'typeorm';
import { AlertEntity, CheckpointEntity, DeliveryEntity, InboundMessageEntity } from './entities.js';
import type { SourcePlace } from './sources/message-sources.js';
import type { AlertRow, CheckpointRow, DeliveryRow, FeedRow, InboundMessageRow } from './rows.js';
import type { InboundTrace } from './trace-events.js';
import { returned } from './returned-rows.js';

export class CheckpointRepository {
  constructor(private readonly em: EntityManager) {}

  get(serverId: string, mailbox: string): Promise<CheckpointRow | null> {
    return this.em.findOneBy(CheckpointEntity, { serverId, mailbox });
  }
  /**
   * Sets the checkpoint (insert or update). A new UIDVALIDITY starts post-processing progress
   * over; with the same one it stays.
   */
  async put(serverId: string, mailbox: string, uidValidity: number, lastUid: number): Promise<void> {
    await this.em.query(
      `INSERT INTO mailbox_checkpoints (server_id, mailbox, uid_validity, last_uid, post_processed_uid, updated_at)
       VALUES ($1, $2, $3, $4, 0, now())
       ON CONFLICT (server_id, mailbox) DO UPDATE SET uid_validity = $3, last_uid = $4, updated_at = now(),
         post_processed_uid = CASE WHEN mailbox_checkpoints.uid_validity = $3
                                   THEN mailbox_checkpoints.post_processed_uid ELSE 0 END`,
      [serverId, mailbox, uidValidity, lastUid],
    );
  }
  /**
   * Microsoft Graph: the link a folder's synchronisation asks next (null: start over), and how many
   * messages were stored under it (added to `last_uid`, which counts them for Graph). UIDVALIDITY
   * is 0, which IMAP never uses.
   */
  async putDeltaLink(serverId: string, mailbox: string, link: string | null, stored = 0): Promise<void> {
    await this.em.query(
      `INSERT INTO mailbox_checkpoints (server_id, mailbox, uid_validity, last_uid, post_processed_uid, delta_link, updated_at)
       VALUES ($1, $2, 0, $4, 0, $3, now())
       ON CONFLICT (server_id, mailbox) DO UPDATE SET delta_link = $3, updated_at = now(),
         last_uid = CASE WHEN mailbox_checkpoints.uid_validity = 0 THEN mailbox_checkpoints.last_uid + $4 ELSE $4 END,
         uid_validity = 0, post_processed_uid = 0`,
      [serverId, mailbox, link, stored],
    );
  }
  /** Records that every message up to `uid` had its post-processing action run (never moves back). */
  async postProcessedUpTo(serverId: string, mailbox: string, uidValidity: number, uid: number): Promise<void> {
    await this.em.query(
      `UPDATE mailbox_checkpoints SET post_processed_uid = GREATEST(post_processed_uid, $4)
        WHERE server_id = $1 AND mailbox = $2 AND uid_validity = $3`,
      [serverId, mailbox, uidValidity, uid],
    );
  }
}

export type NewInboundMessage = Omit<InboundMessageRow, 'ingestedAt' | 'sourceStore' | 'sourceSize' | 'emailId'> & {
  /** Absent: the server gave none. */
  emailId?: string | null;
};

/**
 * A message to insert: its row, and its raw source when it goes to `inbound_raw` in this
 * transaction, or `place` when it was written ahead to a backend outside the database.
 */
export interface NewInboundItem {
  row: NewInboundMessage;
  raw: Buffer | null;
  place?: SourcePlace | null;
  /** The message's trace event (routed, unrouted, quarantined …), written by the same statement. */
  trace?: InboundTrace;
}

/** String methods of ES2024 that Node 20 has (the project's lib is ES2023). */
type Es2024String = string & { isWellFormed(): boolean; toWellFormed(): string };

/**
 * PostgreSQL refuses U+0000 in text and jsonb, and lone UTF-16 surrogates in jsonb; hostile mail
 * carries both. Strings are stored without U+0000 and with lone surrogates as U+FFFD (the raw
 * source keeps every byte). A value that needs no change is returned as it is (no copy): that is
 * nearly every message, and the check allocates nothing.
 */
export function withoutNul<T>(value: T): T {
  return needsCleaning(value) ? cleaned(value) : value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value);
}

function badString(value: string): boolean {
  return value.includes('\u0000') || !(value as Es2024String).isWellFormed();
}

function needsCleaning(value: unknown): boolean {
  if (typeof value === 'string') return badString(value);
  if (Array.isArray(value)) {
    for (const item of value) if (needsCleaning(item)) return true;
    return false;
  }
  if (isPlainObject(value)) {
    for (const key in value) if (needsCleaning(value[key]) || badString(key)) return true;
  }
  return false;
}

function cleaned<T>(value: T): T {
  if (typeof value === 'string') {
    const clean = value.includes('\u0000') ? value.replaceAll('\u0000', '') : value;
    return ((clean as Es2024String).isWellFormed() ? clean : (clean as Es2024String).toWellFormed()) as T;
  }
  if (Array.isArray(value)) return value.map((v: unknown) => cleaned(v)) as T;
  if (isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [cleaned(k), cleaned(v)])) as T;
  }
  return value;
}

/**
 * Columns of `inbound_messages` written by `insertBatch` (ingested_at takes its default), with
 * their SQL types and the one-letter key each has in the JSON rows (column names as keys made up
 * a third of every row's bytes, sent to the database with each batch).
 */
const MESSAGE_COLUMNS = [
  ['id', 'uuid', 'a'],
  ['tenant_id', 'uuid', 'b'],
  ['server_id', 'uuid', 'c'],
  ['mailbox', 'text', 'd'],
  ['uid_validity', 'bigint', 'e'],
  ['uid', 'bigint', 'f'],
  ['status', 'text', 'g'],
  ['quarantine_reason', 'text', 'h'],
  ['message_id_header', 'text', 'i'],
  ['dedupe_key', 'text', 'j'],
  ['conversation_id', 'uuid', 'k'],
  ['subject', 'text', 'l'],
  ['from_address', 'text', 'm'],
  ['from_name', 'text', 'n'],
  ['recipients', 'jsonb', 'o'],
  ['sent_at', 'timestamptz', 'p'],
  ['received_at', 'timestamptz', 'q'],
  ['size', 'integer', 'r'],
  ['classification', 'jsonb', 's'],
  ['in_reply_to', 'text', 't'],
  ['message_references', 'jsonb', 'u'],
  ['body_text', 'text', 'v'],
  ['body_html', 'text', 'w'],
  ['attachments', 'jsonb', 'x'],
  ['source_store', 'text', 'y'],
  ['source_size', 'integer', 'z'],
  ['email_id', 'text', 'za'],
] as const;

type MessageKey = (typeof MESSAGE_COLUMNS)[number][2];

/**
 * Inserts the rows of a JSON array (`json`, not `jsonb`: read once as text, with no binary
 * document built first), skipping those already stored.
 */
const INSERT_MESSAGES = `INSERT INTO inbound_messages (${MESSAGE_COLUMNS.map(([name]) => name).join(', ')})
  SELECT ${MESSAGE_COLUMNS.map(([, , key]) => `r.${key}`).join(', ')}
    FROM json_to_recordset($1::json) AS r(${MESSAGE_COLUMNS.map(([, type, key]) => `${key} ${type}`).join(', ')})
  ON CONFLICT DO NOTHING
  RETURNING id`;

/**
 * The same, with each inserted message's trace event (how it was routed) in the same statement:
 * the events travel as a second, small JSON document (id, type, detail), joined to the rows the
 * insert returns, so that a message skipped as already stored gets no second event.
 */
const INSERT_MESSAGES_TRACED = `WITH ins AS (${INSERT_MESSAGES}, tenant_id, ingested_at),
  tr AS (INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
         SELECT ins.tenant_id, ins.id, ins.ingested_at, t.y, t.z
           FROM ins JOIN json_to_recordset($2::json) AS t(a uuid, y text, z jsonb) ON t.a = ins.id)
  SELECT id FROM ins`;

/** [500] raw sources per INSERT statement (two parameters each; PostgreSQL allows 65,535). */
const RAW_ROWS_PER_STATEMENT = 500;

/** A message row as `json_to_recordset` reads it: keyed as in MESSAGE_COLUMNS, dates as ISO strings. */
function messageRecord(item: NewInboundItem, row: NewInboundMessage = item.row): Record<MessageKey, unknown> {
  const place = item.raw !== null ? { kind: 'postgres', bytes: item.raw.length } : (item.place ?? null);
  return {
    a: row.id, // id
    b: row.tenantId, // tenant_id
    c: row.serverId, // server_id
    d: row.mailbox, // mailbox
    e: row.uidValidity, // uid_validity
    f: row.uid, // uid
    g: row.status, // status
    h: row.quarantineReason, // quarantine_reason
    i: row.messageIdHeader, // message_id_header
    j: row.dedupeKey, // dedupe_key
    k: row.conversationId, // conversation_id
    l: row.subject, // subject
    m: row.fromAddress, // from_address
    n: row.fromName, // from_name
    o: row.recipients, // recipients
    p: row.sentAt?.toISOString() ?? null, // sent_at
    q: row.receivedAt.toISOString(), // received_at
    r: row.size, // size
    s: row.classification, // classification
    t: row.inReplyTo, // in_reply_to
    u: row.references, // message_references
    v: row.bodyText, // body_text
    w: row.bodyHtml, // body_html
    x: row.attachments, // attachments
    y: place?.kind ?? null, // source_store
    z: place?.bytes ?? null, // source_size
    za: row.emailId ?? null, // email_id
  };
}

/**
 * Whether a JSON text holds an escape of what PostgreSQL refuses: U+0000 (`\u0000`) or a lone
 * UTF-16 surrogate (`JSON.stringify` writes one as `\udxxx`, lower-case, and a well-formed pair as
 * it is). Plain `indexOf` scans (no regular expression: ten megabytes a batch). A text that holds
 * such an escape literally counts too; it only costs a cleaning pass that changes nothing.
 */
function hasRefusedEscape(json: string): boolean {
  if (json.includes('\\u0000')) return true;
  for (let at = json.indexOf('\\ud'); at !== -1; at = json.indexOf('\\ud', at + 3)) {
    const digit = json.charCodeAt(at + 3);
    if ((digit >= 0x38 && digit <= 0x39) || (digit >= 0x61 && digit <= 0x66)) return true; // 8-9, a-f
  }
  return false;
}

/**
 * The rows as one JSON document. Nearly every batch is clean: one scan of the document finds out,
 * instead of a walk through every string of every row; a batch that is not is cleaned row by row.
 */
function messagesJson(items: readonly NewInboundItem[]): string {
  const json = JSON.stringify(items.map((i) => messageRecord(i)));
  if (!hasRefusedEscape(json)) return json;
  return JSON.stringify(items.map((i) => messageRecord(i, withoutNul(i.row))));
}

/** The trace events of a batch (one per message), keyed as INSERT_MESSAGES_TRACED reads them. */
function traceJson(items: Array<{ row: NewInboundMessage; trace?: InboundTrace }>): string {
  const json = JSON.stringify(
    items.map((i) => ({ a: i.row.id, y: (i.trace as InboundTrace).type, z: (i.trace as InboundTrace).detail })),
  );
  return hasRefusedEscape(json) ? JSON.stringify(withoutNul(JSON.parse(json) as unknown)) : json;
}

export class InboundMessageRepository {
  constructor(private readonly em: EntityManager) {}

  /** Inserts unless (server, mailbox, UIDVALIDITY, UID) is already stored; true when inserted. */
  async insertOnce(row: NewInboundMessage, raw: Buffer | null): Promise<boolean> {
    const inserted = await this.insertBatch([{ row, raw }]);
    return inserted.has(row.id);
  }

  /**
   * Inserts messages and their raw sources; rows whose (server, mailbox, UIDVALIDITY, UID) is
   * already stored are skipped. Returns the ids actually inserted. Two statements whatever the
   * batch size: the rows travel as one JSON document (`json_to_recordset`, the same on PostgreSQL
   * and PGlite), the raw sources as binary parameters of one multi-row VALUES list.
   */
  async insertBatch(items: readonly NewInboundItem[]): Promise<Set<string>> {
    if (items.length === 0) return new Set();
    const traced = items.filter((i) => i.trace !== undefined);
    const result: Array<{ id: string }> =
      traced.length === 0
        ? await this.em.query(INSERT_MESSAGES, [messagesJson(items)])
        : await this.em.query(INSERT_MESSAGES_TRACED, [messagesJson(items), traceJson(traced)]);
    const inserted = new Set(result.map((r) => r.id));
    const raws = items.filter((i) => i.raw !== null && inserted.has(i.row.id));
    for (let start = 0; start < raws.length; start += RAW_ROWS_PER_STATEMENT) {
      const chunk = raws.slice(start, start + RAW_ROWS_PER_STATEMENT);
      await this.em.query(
        `INSERT INTO inbound_raw (message_id, raw) VALUES ${chunk.map((_, i) => `($${2 * i + 1}::uuid, $${2 * i + 2}::bytea)`).join(', ')}`,
        chunk.flatMap((i) => [i.row.id, i.raw as Buffer]),
      );
    }
    return inserted;
  }

  /** Which of these dedupe keys this server has stored already. */
  /** Which of these UIDs of a mailbox (under one UIDVALIDITY) are stored already. */
  async storedUids(serverId: string, mailbox: string, uidValidity: number, uids: number[]): Promise<Set<number>> {
    if (uids.length === 0) return new Set();
    const rows: Array<{ uid: string }> = await this.em.query(
      `SELECT uid FROM inbound_messages
        WHERE server_id = $1 AND mailbox = $2 AND uid_validity = $3 AND uid = ANY($4::bigint[])`,
      [serverId, mailbox, uidValidity, uids],
    );
    return new Set(rows.map((r) => Number(r.uid)));
  }

  existingDedupeKeys(serverId: string, keys: string[]): Promise<Set<string>> {
    return this.existing('dedupe_key', serverId, keys);
  }

  /** Conversation of the newest stored message of the tenant per Message-ID, for these ids. */
  async conversationsOf(tenantId: string, messageIds: string[]): Promise<Map<string, string>> {
    if (messageIds.length === 0) return new Map();
    const rows: Array<{ message_id_header: string; conversation_id: string }> = await this.em.query(
      `SELECT DISTINCT ON (message_id_header) message_id_header, conversation_id FROM inbound_messages
        WHERE tenant_id = $1 AND message_id_header = ANY($2::text[])
        ORDER BY message_id_header, ingested_at DESC`,
      [tenantId, messageIds],
    );
    return new Map(rows.map((r) => [r.message_id_header, r.conversation_id]));
  }
  get(tenantId: string, id: string): Promise<InboundMessageRow | null> {
    return this.em.findOneBy(InboundMessageEntity, { tenantId, id });
  }
  /** Several of a tenant's messages in one query, by id (those not found are absent). */
  async getMany(tenantId: string, ids: readonly string[]): Promise<Map<string, InboundMessageRow>> {
    if (ids.length === 0) return new Map();
    const rows = await this.em.findBy(InboundMessageEntity, { tenantId, id: In([...ids]) });
    return new Map(rows.map((r) => [r.id, r]));
  }
  /**
   * Which of these server ids of messages (X-GM-MSGID, EMAILID) this server has stored already from
   * another folder than `mailbox`: a copy in another watched folder is the same message. In the
   * same folder (appended again after a new UIDVALIDITY: Cyrus derives EMAILID from the content)
   * it is read as any message and recognised by its Message-ID, and post-processed there.
   */
  async existingEmailIds(serverId: string, mailbox: string, emailIds: string[]): Promise<Set<string>> {
    if (emailIds.length === 0) return new Set();
    const rows: Array<{ v: string }> = await this.em.query(
      `SELECT email_id AS v FROM inbound_messages
        WHERE server_id = $1 AND email_id = ANY($2::text[]) AND mailbox <> $3`,
      [serverId, emailIds, mailbox],
    );
    return new Set(rows.map((r) => r.v));
  }

  /** Which of these values of an indexed column this server's messages have. */
  private async existing(column: 'dedupe_key', serverId: string, values: string[]): Promise<Set<string>> {
    if (values.length === 0) return new Set();
    const rows: Array<{ v: string }> = await this.em.query(
      `SELECT ${column} AS v FROM inbound_messages WHERE server_id = $1 AND ${column} = ANY($2::text[])`,
      [serverId, values],
    );
    return new Set(rows.map((r) => r.v));
  }

  /** Whether this server already stored a message with this dedupe key (Message-ID or header hash). */
  async existsByDedupeKey(serverId: string, dedupeKey: string): Promise<boolean> {
    return (await this.em.countBy(InboundMessageEntity, { serverId, dedupeKey })) > 0;
  }
  /** The conversation of the newest message of the tenant with one of these Message-IDs. */
  async conversationOf(tenantId: string, messageIds: string[]): Promise<string | null> {
    if (messageIds.length === 0) return null;
    const rows: Array<{ conversation_id: string }> = await this.em.query(
      `SELECT conversation_id FROM inbound_messages
        WHERE tenant_id = $1 AND message_id_header = ANY($2::text[])
        ORDER BY ingested_at DESC LIMIT 1`,
      [tenantId, messageIds],
    );
    return rows[0]?.conversation_id ?? null;
  }
  /**
   * Messages stored above `afterUid` in the mailbox, up to `limit`, in UID order: those whose
   * post-processing action may not have run yet (the action runs after the commit).
   */
  async storedAfter(
    serverId: string,
    mailbox: string,
    uidValidity: number,
    afterUid: number,
    limit: number,
  ): Promise<Array<Pick<InboundMessageRow, 'id' | 'uid' | 'status'>>> {
    const rows: Array<{ id: string; uid: string; status: InboundMessageRow['status'] }> = await this.em.query(
      `SELECT id, uid, status FROM inbound_messages
        WHERE server_id = $1 AND mailbox = $2 AND uid_validity = $3 AND uid > $4
        ORDER BY uid LIMIT $5`,
      [serverId, mailbox, uidValidity, afterUid, limit],
    );
    return rows.map((r) => ({ id: r.id, uid: Number(r.uid), status: r.status }));
  }
  /** Marks routed messages unrouted (every destination they were routed to is gone). */
  async markUnrouted(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.em.query(
      `WITH u AS (UPDATE inbound_messages SET status = 'unrouted' WHERE id = ANY($1::uuid[]) AND status = 'routed'
                  RETURNING id, tenant_id)
       INSERT INTO trace_events (tenant_id, message_id, type, detail)
       SELECT tenant_id, id, 'unrouted', '{"reason":"its destination was deleted while it was being routed"}'::jsonb
         FROM u`,
      [ids],
    );
  }
  /** A server's message, its row locked until the transaction ends (an operator's action on it). */
  async lockHeld(tenantId: string, serverId: string, id: string): Promise<InboundMessageRow | null> {
    const rows: unknown[] = await this.em.query(
      'SELECT id FROM inbound_messages WHERE tenant_id = $1 AND server_id = $2 AND id = $3 FOR UPDATE',
      [tenantId, serverId, id],
    );
    return rows.length === 0 ? null : this.get(tenantId, id);
  }
  /** A new status; a quarantine reason stays as history (the trace shows it with its event). */
  async setStatus(id: string, status: InboundMessageRow['status']): Promise<void> {
    await this.em.update(InboundMessageEntity, { id }, { status });
  }
  /** The fields a new parse gives a stored message (a quarantined one released after a fix). */
  async replaceParsed(id: string, row: NewInboundMessage): Promise<void> {
    const clean = withoutNul(row);
    await this.em.update(InboundMessageEntity, { id }, {
      messageIdHeader: clean.messageIdHeader,
      subject: clean.subject,
      fromAddress: clean.fromAddress,
      fromName: clean.fromName,
      recipients: clean.recipients,
      sentAt: clean.sentAt,
      classification: clean.classification,
      inReplyTo: clean.inReplyTo,
      references: clean.references,
      bodyText: clean.bodyText,
      bodyHtml: clean.bodyHtml,
      attachments: clean.attachments,
    } as Parameters<EntityManager['update']>[2]);
  }
  async delete(id: string): Promise<void> {
    await this.em.delete(InboundMessageEntity, { id });
  }
  listByStatus(tenantId: string, serverId: string, status: string, limit: number): Promise<InboundMessageRow[]> {
    return this.em.find(InboundMessageEntity, {
      where: { tenantId, serverId, status: status as InboundMessageRow['status'] },
      order: { ingestedAt: 'DESC' },
      take: limit,
    });
  }
  countByServer(serverId: string): Promise<number> {
    return this.em.countBy(InboundMessageEntity, { serverId });
  }
}

const FEED_SELECT = `SELECT d.seq, d.message_id, d.claimed_by, d.acked_at, m.conversation_id, m.subject, m.from_address,
       m.from_name, m.received_at, m.classification
  FROM inbound_deliveries d JOIN inbound_messages m ON m.id = d.message_id`;

function feedRowOf(r: Record<string, unknown>): FeedRow {
  return {
    delivery: {
      seq: Number(r.seq),
      messageId: r.message_id as string,
      claimedBy: (r.claimed_by as string | null) ?? null,
      ackedAt: r.acked_at === null || r.acked_at === undefined ? null : new Date(r.acked_at as string),
    },
    message: {
      id: r.message_id as string,
      conversationId: r.conversation_id as string,
      subject: r.subject as string,
      fromAddress: (r.from_address as string | null) ?? null,
      fromName: (r.from_name as string | null) ?? null,
      receivedAt: new Date(r.received_at as string),
      classification: (typeof r.classification === 'string'
        ? JSON.parse(r.classification)
        : r.classification) as InboundMessageRow['classification'],
    },
  };
}

export class DeliveryRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * Appends messages to a destination's queue with the next sequence numbers, counted on from the
   * destination's `last_seq` (migration 0033), never from the deliveries still stored: an erasure
   * or retention that removed the newest ones must not make their numbers given again. The update
   * locks the destination row for the transaction, so numbers are gap-free and in commit order.
   * Answers null, appending nothing, when the destination is gone (deleted since the messages were routed).
   */
  async append(destinationId: string, tenantId: string, messageIds: string[]): Promise<number[] | null> {
    if (messageIds.length === 0) return [];
    const [last] = await returned<{ last_seq: string | number }>(
      this.em.query('UPDATE destinations SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq', [
        destinationId,
        messageIds.length,
      ]),
    );
    if (!last) return null;
    const first = Number(last.last_seq) - messageIds.length;
    const rows: Array<{ seq: string | number }> = await this.em.query(
      `INSERT INTO inbound_deliveries (destination_id, seq, message_id, tenant_id)
       SELECT $1, $4::bigint + m.ord, m.message_id, $2
         FROM unnest($3::uuid[]) WITH ORDINALITY AS m(message_id, ord)
        ORDER BY m.ord
       RETURNING seq`,
      [destinationId, tenantId, messageIds, first],
    );
    return rows.map((r) => Number(r.seq)).sort((a, b) => a - b);
  }
  /**
   * The feed rows of these `seq`s of a destination, oldest first, in one statement and only the
   * columns a feed shows (webhook runs and long polls read hundreds at a time). A delivery whose
   * message is gone is left out.
   */
  async feedRows(destinationId: string, seqs: readonly number[]): Promise<FeedRow[]> {
    if (seqs.length === 0) return [];
    const rows: Array<Record<string, unknown>> = await this.em.query(
      `${FEED_SELECT} WHERE d.destination_id = $1 AND d.seq = ANY($2::bigint[]) ORDER BY d.seq`,
      [destinationId, seqs],
    );
    return rows.map(feedRowOf);
  }

  /** The latest `seq` of each of these destinations that has deliveries (one index probe each). */
  async latestSeqs(destinationIds: readonly string[]): Promise<Map<string, number>> {
    if (destinationIds.length === 0) return new Map();
    const rows: Array<{ id: string; seq: string | number | null }> = await this.em.query(
      `SELECT d.id, (SELECT MAX(seq) FROM inbound_deliveries WHERE destination_id = d.id) AS seq
         FROM unnest($1::uuid[]) AS d(id)`,
      [destinationIds],
    );
    const latest = new Map<string, number>();
    for (const r of rows) if (r.seq !== null) latest.set(r.id, Number(r.seq));
    return latest;
  }

  /** The feed rows after `afterSeq`, oldest first, in one statement (long polls, event streams). */
  async feedAfter(destinationId: string, afterSeq: number, limit: number): Promise<FeedRow[]> {
    const rows: Array<Record<string, unknown>> = await this.em.query(
      `${FEED_SELECT} WHERE d.destination_id = $1 AND d.seq > $2 ORDER BY d.seq LIMIT $3`,
      [destinationId, afterSeq, limit],
    );
    return rows.map(feedRowOf);
  }

  /** The newest deliveries below `beforeSeq` (all when null), newest first. */
  listBefore(destinationId: string, beforeSeq: number | null, limit: number): Promise<DeliveryRow[]> {
    const query = this.em
      .getRepository(DeliveryEntity)
      .createQueryBuilder('d')
      .where('d.destinationId = :destinationId', { destinationId });
    if (beforeSeq !== null) query.andWhere('d.seq < :beforeSeq', { beforeSeq });
    return query.orderBy('d.seq', 'DESC').limit(limit).getMany();
  }
  get(destinationId: string, messageId: string): Promise<DeliveryRow | null> {
    return this.em.findOneBy(DeliveryEntity, { destinationId, messageId });
  }
  /** Claims for `agent` unless someone else holds it; returns the row after the attempt. */
  /**
   * Claims for `agent` unless someone else holds it; returns the row after the attempt. A claim
   * that took (a first one, not a repeat) is traced with `by` (the token), in the same statement.
   */
  async claim(
    destinationId: string,
    messageId: string,
    agent: string,
    at: Date,
    by: Record<string, unknown> = {},
  ): Promise<DeliveryRow | null> {
    await this.em.query(
      `WITH c AS (UPDATE inbound_deliveries SET claimed_by = $3, claimed_at = $4
                   WHERE destination_id = $1 AND message_id = $2 AND claimed_by IS NULL
                   RETURNING tenant_id),
            r AS (UPDATE inbound_deliveries SET claimed_at = $4
                   WHERE destination_id = $1 AND message_id = $2 AND claimed_by = $3)
       INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
       SELECT tenant_id, $2, $4, 'claimed', $5::jsonb FROM c`,
      [destinationId, messageId, agent, at, JSON.stringify(withoutNul({ destinationId, agent, ...by }))],
    );
    return this.get(destinationId, messageId);
  }
  /** Acknowledges (once: a repeat changes nothing and is not traced again). */
  /**
   * Acknowledges a delivery once. With `agent`, only while the delivery is unclaimed or claimed by
   * that agent (the caller tells a refusal by the row's claimedBy).
   */
  async ack(
    destinationId: string,
    messageId: string,
    at: Date,
    by: Record<string, unknown> = {},
    agent?: string,
  ): Promise<void> {
    await this.em.query(
      `WITH a AS (UPDATE inbound_deliveries SET acked_at = $3
                   WHERE destination_id = $1 AND message_id = $2 AND acked_at IS NULL
                     AND ($5::text IS NULL OR claimed_by IS NULL OR claimed_by = $5)
                   RETURNING tenant_id)
       INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
       SELECT tenant_id, $2, $3, 'acknowledged', $4::jsonb FROM a`,
      [
        destinationId,
        messageId,
        at,
        JSON.stringify(withoutNul({ destinationId, ...(agent !== undefined && { agent }), ...by })),
        agent ?? null,
      ],
    );
  }
  listForMessage(messageId: string): Promise<DeliveryRow[]> {
    return this.em.find(DeliveryEntity, { where: { messageId }, order: { destinationId: 'ASC' } });
  }
}

export class AlertRepository {
  constructor(private readonly em: EntityManager) {}

  /** Inserts an alert; its text may quote hostile mail or a database error, so it is cleaned like a message. */
  async insert(row: Omit<AlertRow, 'createdAt'>): Promise<void> {
    await this.em.insert(AlertEntity, withoutNul(row) as Parameters<EntityManager['insert']>[1]);
  }
  listByServer(serverId: string, limit = 100): Promise<AlertRow[]> {
    return this.em.find(AlertEntity, { where: { serverId }, order: { createdAt: 'DESC' }, take: limit });
  }
}
