import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Raw sources in a backend of the operator's choice: each message row names where its source is
 * (`source_store`: postgres, directory, s3; null when none was kept) and its size in bytes.
 * Sources stored so far are in `inbound_raw` (their size taken from the message's IMAP size,
 * which is the source's length: no source is read). `job_leases`: background jobs that one
 * instance at a time runs (retention, the orphan sweeper).
 */
export class MessageSources1764000000022 implements MigrationInterface {
  name = 'MessageSources1764000000022';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE inbound_messages ADD COLUMN source_store text, ADD COLUMN source_size integer`);
    await q.query(
      `UPDATE inbound_messages m SET source_store = 'postgres', source_size = m.size
         FROM inbound_raw r WHERE r.message_id = m.id`,
    );
    await q.query(`
      CREATE TABLE job_leases (
        name text NOT NULL,
        owner text NOT NULL,
        expires_at timestamptz NOT NULL,
        CONSTRAINT job_leases_pk PRIMARY KEY (name)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE job_leases`);
    await q.query(`ALTER TABLE inbound_messages DROP COLUMN source_store, DROP COLUMN source_size`);
  }
}
