import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes for the trace search by address and by subject (issue 26). Without them both read a
 * tenant's messages newest first until a page is full: p99 1.1 s (address) and 1.8 s (subject) at
 * 100,000 messages, growing with the mailbox. With them (bench/README.md, `trace`):
 *
 * - subject: trigram GIN indexes (pg_trgm, shipped with PostgreSQL's contrib and loaded into the
 *   embedded PGlite by store/pglite-pool.ts) serve `subject ILIKE '%…%'`, case ignored;
 * - address: the sender by (tenant, from_address), the recipients by a GIN `jsonb_path_ops` index
 *   over the whole `recipients` document, which serves `recipients @> {"to": [{"address": …}]}`
 *   (store/trace-search.ts asks it that way), on inbound and outbound mail. Outgoing mail "from"
 *   an address is its destination's: the search looks the destinations up first.
 *
 * Each is paid by every message at ingest; GIN's pending list (`fastupdate`, on by default) keeps
 * an insert's share small and folds it in later. `CREATE EXTENSION` needs a role allowed to create
 * it: pg_trgm is a trusted extension (PostgreSQL 13+), so a database owner may.
 */
export class TraceSearchIndexes1764000000041 implements MigrationInterface {
  name = 'TraceSearchIndexes1764000000041';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE EXTENSION IF NOT EXISTS pg_trgm`);
    await q.query(
      `CREATE INDEX inbound_messages_subject_trgm_idx ON inbound_messages USING gin (subject gin_trgm_ops)`,
    );
    await q.query(
      `CREATE INDEX inbound_messages_recipients_idx ON inbound_messages USING gin (recipients jsonb_path_ops)`,
    );
    await q.query(`CREATE INDEX inbound_messages_sender_idx ON inbound_messages (tenant_id, from_address)`);
    await q.query(
      `CREATE INDEX outbound_messages_subject_trgm_idx ON outbound_messages USING gin (subject gin_trgm_ops)`,
    );
    await q.query(
      `CREATE INDEX outbound_messages_recipients_idx ON outbound_messages USING gin (recipients jsonb_path_ops)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX outbound_messages_recipients_idx`);
    await q.query(`DROP INDEX outbound_messages_subject_trgm_idx`);
    await q.query(`DROP INDEX inbound_messages_sender_idx`);
    await q.query(`DROP INDEX inbound_messages_recipients_idx`);
    await q.query(`DROP INDEX inbound_messages_subject_trgm_idx`);
    // The extension stays: another schema or application of the database may use it.
  }
}
