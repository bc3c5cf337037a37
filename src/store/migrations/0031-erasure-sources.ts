import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The sources an erasure still has to delete outside the database (a directory, an object store):
 * written in the transaction that deletes their messages' rows, removed once the sources are
 * gone. A crash between the two (a SIGKILL half way) leaves them listed, and the erasure's next
 * run deletes them first: the address leaves no source behind, without waiting for the orphan
 * sweep's grace. Only ids are kept here, never an address.
 */
export class ErasureSources1764000000031 implements MigrationInterface {
  name = 'ErasureSources1764000000031';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE erasure_sources (
        erasure_id uuid NOT NULL,
        tenant_id uuid NOT NULL,
        message_id uuid NOT NULL,
        source_store text NOT NULL,
        CONSTRAINT erasure_sources_pk PRIMARY KEY (erasure_id, message_id),
        CONSTRAINT erasure_sources_erasure_fk FOREIGN KEY (erasure_id) REFERENCES erasures (id) ON DELETE CASCADE
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE erasure_sources`);
  }
}
