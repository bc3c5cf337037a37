import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The trace search's outbound side read newest first within a tenant: the index
 * `outbound_messages_age_idx` (tenant_id, created_at) of migration 0023 (retention) serves it, so
 * this migration adds nothing any more (it is kept so that its name stays in the list). By Message-ID both sides
 * use their indexes of 0002 and 0003. No index is added to inbound_messages: each would be paid by
 * every message at ingest (the hot path); sender, subject and recipient filters read a tenant's
 * messages newest first until a page is full.
 */
export class TraceSearch1764000000027 implements MigrationInterface {
  name = 'TraceSearch1764000000027';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`SELECT 1`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`SELECT 1`);
  }
}
