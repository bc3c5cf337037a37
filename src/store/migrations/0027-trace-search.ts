import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The trace search's outbound side read newest first within a tenant. By Message-ID both sides
 * use their indexes of 0002 and 0003. No index is added to inbound_messages: each would be paid by
 * every message at ingest (the hot path); sender, subject and recipient filters read a tenant's
 * messages newest first until a page is full.
 */
export class TraceSearch1764000000027 implements MigrationInterface {
  name = 'TraceSearch1764000000027';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX outbound_messages_tenant_created_idx ON outbound_messages (tenant_id, created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX outbound_messages_tenant_created_idx`);
  }
}
