import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Two findings of the fault runs (issue 29):
 * - each engine process records where its pid is meaningful (`place`: host, kernel boot, PID
 *   namespace) and its `pid`, so that a process started again under the same instance id can
 *   tell that its predecessor is gone and take its leases back at once;
 * - the recipients the server accepted a message for while it refused others for now, so that
 *   a dead letter of a narrowed message still names every recipient with what became of each.
 * Existing rows have neither (null place: never inferred from; no accepted recipients recorded).
 */
export class InstanceProcessAndAcceptedRecipients1764000000018 implements MigrationInterface {
  name = 'InstanceProcessAndAcceptedRecipients1764000000018';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE engine_instances ADD COLUMN place text, ADD COLUMN pid integer`);
    await q.query(`ALTER TABLE outbound_messages ADD COLUMN accepted_recipients jsonb NOT NULL DEFAULT '[]'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbound_messages DROP COLUMN accepted_recipients`);
    await q.query(`ALTER TABLE engine_instances DROP COLUMN place, DROP COLUMN pid`);
  }
}
