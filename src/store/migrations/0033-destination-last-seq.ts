import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A destination's `seq` numbers are never reused: the last one given is kept on the destination
 * (`last_seq`), not read back as the highest delivery still stored, which an erasure or retention
 * lowers (the next message then took a number agents had already seen: a pull cursor skipped it
 * and a webhook receiver dropped it as a repeated `Idempotency-Key`). Filled from what is stored.
 */
export class DestinationLastSeq1764000000033 implements MigrationInterface {
  name = 'DestinationLastSeq1764000000033';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE destinations ADD COLUMN last_seq bigint NOT NULL DEFAULT 0`);
    await q.query(`
      UPDATE destinations t
         SET last_seq = GREATEST(
               COALESCE((SELECT MAX(seq) FROM inbound_deliveries WHERE destination_id = t.id), 0),
               COALESCE((SELECT MAX(seq) FROM webhook_deliveries WHERE destination_id = t.id), 0))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE destinations DROP COLUMN last_seq`);
  }
}
