import type { EntityManager } from 'typeorm';
import { AlertEntity, CheckpointEntity, DeliveryEntity, InboundMessageEntity, InboundRawEntity } from './entities.js';
import type { AlertRow, CheckpointRow, DeliveryRow, InboundMessageRow } from './rows.js';

export class CheckpointRepository {
  constructor(private readonly em: EntityManager) {}

  get(serverId: string, mailbox: string): Promise<CheckpointRow | null> {
    return this.em.findOneBy(CheckpointEntity, { serverId, mailbox });
  }
  /** Sets the checkpoint (insert or update). */
  async put(serverId: string, mailbox: string, uidValidity: number, lastUid: number): Promise<void> {
    await this.em.query(
      `INSERT INTO mailbox_checkpoints (server_id, mailbox, uid_validity, last_uid, updated_at)
       VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (server_id, mailbox) DO UPDATE SET uid_validity = $3, last_uid = $4, updated_at = now()`,
      [serverId, mailbox, uidValidity, lastUid],
    );
  }
}

export type NewInboundMessage = Omit<InboundMessageRow, 'ingestedAt'>;

/**
 * PostgreSQL refuses U+0000 in text and jsonb; hostile mail carries it. Strings are stored
 * without it (the raw source keeps every byte).
 */
export function withoutNul<T>(value: T): T {
  if (typeof value === 'string') return (value.includes('\u0000') ? value.replaceAll('\u0000', '') : value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => withoutNul(v)) as T;
  if (value !== null && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutNul(v)])) as T;
  }
  return value;
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
   * already stored are skipped. Returns the ids actually inserted.
   */
  async insertBatch(items: Array<{ row: NewInboundMessage; raw: Buffer | null }>): Promise<Set<string>> {
    if (items.length === 0) return new Set();
    const result = await this.em
      .createQueryBuilder()
      .insert()
      .into(InboundMessageEntity)
      .values(items.map((i) => withoutNul(i.row)))
      .orIgnore()
      .returning(['id'])
      .execute();
    const inserted = new Set((result.raw as Array<{ id: string }>).map((r) => r.id));
    const raws = items.filter((i) => i.raw !== null && inserted.has(i.row.id));
    if (raws.length > 0) {
      await this.em.insert(
        InboundRawEntity,
        raws.map((i) => ({ messageId: i.row.id, raw: i.raw as Buffer })),
      );
    }
    return inserted;
  }

  /** Which of these dedupe keys this server has stored already. */
  async existingDedupeKeys(serverId: string, keys: string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const rows: Array<{ dedupe_key: string }> = await this.em.query(
      'SELECT DISTINCT dedupe_key FROM inbound_messages WHERE server_id = $1 AND dedupe_key = ANY($2::text[])',
      [serverId, keys],
    );
    return new Set(rows.map((r) => r.dedupe_key));
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
  async raw(id: string): Promise<Buffer | null> {
    const row = await this.em.findOneBy(InboundRawEntity, { messageId: id });
    return row ? row.raw : null;
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
  /** Messages stored but not yet post-processed in the mailbox (the action runs after the commit). */
  pendingPostProcess(
    serverId: string,
    mailbox: string,
    uidValidity: number,
    limit: number,
  ): Promise<InboundMessageRow[]> {
    return this.em
      .getRepository(InboundMessageEntity)
      .createQueryBuilder('m')
      .where('m.serverId = :serverId AND m.mailbox = :mailbox AND m.uidValidity = :uidValidity', {
        serverId,
        mailbox,
        uidValidity,
      })
      .andWhere('m.postProcessedAt IS NULL')
      .andWhere("m.status <> 'quarantined'")
      .orderBy('m.uid', 'ASC')
      .limit(limit)
      .getMany();
  }
  async markPostProcessed(ids: string[], at: Date): Promise<void> {
    if (ids.length === 0) return;
    await this.em.query('UPDATE inbound_messages SET post_processed_at = $1 WHERE id = ANY($2::uuid[])', [at, ids]);
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

export class DeliveryRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * Appends a message to a destination's queue with the next sequence number. The destination
   * row is locked for the transaction, so numbers are gap-free and in commit order.
   */
  async append(destinationId: string, tenantId: string, messageIds: string[]): Promise<number[]> {
    if (messageIds.length === 0) return [];
    await this.em.query('SELECT id FROM destinations WHERE id = $1 FOR UPDATE', [destinationId]);
    const rows: Array<{ next: string }> = await this.em.query(
      'SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM inbound_deliveries WHERE destination_id = $1',
      [destinationId],
    );
    const first = Number(rows[0]?.next ?? 1);
    const values = messageIds.map((messageId, i) => ({ destinationId, seq: first + i, messageId, tenantId }));
    await this.em.insert(DeliveryEntity, values);
    return values.map((v) => v.seq);
  }
  /** Deliveries after `afterSeq`, oldest first. */
  listAfter(destinationId: string, afterSeq: number, limit: number): Promise<DeliveryRow[]> {
    return this.em
      .getRepository(DeliveryEntity)
      .createQueryBuilder('d')
      .where('d.destinationId = :destinationId AND d.seq > :afterSeq', { destinationId, afterSeq })
      .orderBy('d.seq', 'ASC')
      .limit(limit)
      .getMany();
  }
  get(destinationId: string, messageId: string): Promise<DeliveryRow | null> {
    return this.em.findOneBy(DeliveryEntity, { destinationId, messageId });
  }
  /** Claims for `agent` unless someone else holds it; returns the row after the attempt. */
  async claim(destinationId: string, messageId: string, agent: string, at: Date): Promise<DeliveryRow | null> {
    await this.em.query(
      `UPDATE inbound_deliveries SET claimed_by = $3, claimed_at = $4
        WHERE destination_id = $1 AND message_id = $2 AND (claimed_by IS NULL OR claimed_by = $3)`,
      [destinationId, messageId, agent, at],
    );
    return this.get(destinationId, messageId);
  }
  async ack(destinationId: string, messageId: string, at: Date): Promise<void> {
    await this.em.query(
      `UPDATE inbound_deliveries SET acked_at = COALESCE(acked_at, $3) WHERE destination_id = $1 AND message_id = $2`,
      [destinationId, messageId, at],
    );
  }
  listForMessage(messageId: string): Promise<DeliveryRow[]> {
    return this.em.find(DeliveryEntity, { where: { messageId }, order: { destinationId: 'ASC' } });
  }
}

export class AlertRepository {
  constructor(private readonly em: EntityManager) {}

  async insert(row: Omit<AlertRow, 'createdAt'>): Promise<void> {
    await this.em.insert(AlertEntity, row as Parameters<EntityManager['insert']>[1]);
  }
  listByServer(serverId: string, limit = 100): Promise<AlertRow[]> {
    return this.em.find(AlertEntity, { where: { serverId }, order: { createdAt: 'DESC' }, take: limit });
  }
}
