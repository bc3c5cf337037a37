import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The recipients the server refused for good while it took a message for the others (a partly
 * sent message), with its reply to each. Existing rows have none.
 */
export class RefusedRecipients1764000000017 implements MigrationInterface {
  name = 'RefusedRecipients1764000000017';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbound_messages ADD COLUMN refused_recipients jsonb NOT NULL DEFAULT '[]'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbound_messages DROP COLUMN refused_recipients`);
  }
}
