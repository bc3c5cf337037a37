import type { EntityManager } from 'typeorm';
import { OutboundMessageEntity, SendLogEntity } from './entities.js';
import type { OutboundMessageRow } from './rows.js';

export class OutboundMessageRepository {
  constructor(private readonly em: EntityManager) {}

  async insert(row: Omit<OutboundMessageRow, 'createdAt' | 'updatedAt'>): Promise<void> {
    await this.em.insert(OutboundMessageEntity, row as Parameters<EntityManager['insert']>[1]);
  }
  /** Inserts unless a row with this id exists (recovering a row from a spool header). */
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
}

/** The durable record of sends the hourly rate limit reads: it survives restarts. */
export class SendLogRepository {
  constructor(private readonly em: EntityManager) {}

  async record(serverId: string, sentAt: Date, outboundId: string | null): Promise<void> {
    await this.em.insert(SendLogEntity, { serverId, sentAt, outboundId });
  }
  /** Send times of a server since `since`, oldest first. */
  async since(serverId: string, since: Date): Promise<Date[]> {
    const rows: Array<{ sent_at: Date }> = await this.em.query(
      'SELECT sent_at FROM smtp_send_log WHERE server_id = $1 AND sent_at > $2 ORDER BY sent_at ASC',
      [serverId, since],
    );
    return rows.map((r) => new Date(r.sent_at));
  }
  /** Forgets sends older than `before` (they no longer count for any window). */
  async prune(before: Date): Promise<void> {
    await this.em.query('DELETE FROM smtp_send_log WHERE sent_at < $1', [before]);
  }
}
