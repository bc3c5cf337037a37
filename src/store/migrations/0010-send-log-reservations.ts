import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The hourly rate limit takes its place in the send log before a message goes out (a
 * reservation, `recorded = false`), under a lock per server, and the delivery's record replaces
 * it: two engine instances delivering for the same account can no longer both take the last place
 * of the hour. Existing rows are recorded sends.
 */
export class SendLogReservations1764000000010 implements MigrationInterface {
  name = 'SendLogReservations1764000000010';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE smtp_send_log ADD COLUMN recorded boolean NOT NULL DEFAULT true`);
    await q.query(`CREATE INDEX smtp_send_log_reservation_idx ON smtp_send_log (outbound_id) WHERE NOT recorded`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM smtp_send_log WHERE NOT recorded`);
    await q.query(`DROP INDEX smtp_send_log_reservation_idx`);
    await q.query(`ALTER TABLE smtp_send_log DROP COLUMN recorded`);
  }
}
