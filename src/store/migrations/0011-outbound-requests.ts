import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Outgoing mail managed from any instance. A dead letter's row says so (`dead_lettered_at`), so
 * that every instance lists the same dead letters, those of deleted servers too; and what must be
 * done to a message whose spool file lies on another instance's disk (cancel it, re-queue or
 * delete its dead letter) is a row of `outbound_requests` that the instance holding the file
 * carries out.
 */
export class OutboundRequests1764000000011 implements MigrationInterface {
  name = 'OutboundRequests1764000000011';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbound_messages ADD COLUMN dead_lettered_at timestamptz`);
    await q.query(
      `CREATE INDEX outbound_messages_dead_idx ON outbound_messages (tenant_id, server_id)
        WHERE dead_lettered_at IS NOT NULL`,
    );
    await q.query(`
      CREATE TABLE outbound_requests (
        id bigserial PRIMARY KEY,
        instance_id text NOT NULL,
        outbound_id uuid NOT NULL,
        action text NOT NULL,
        requested_at timestamptz NOT NULL DEFAULT now(),
        done_at timestamptz,
        outcome text
      )`);
    await q.query(
      `CREATE INDEX outbound_requests_pending_idx ON outbound_requests (instance_id, id) WHERE done_at IS NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE outbound_requests`);
    await q.query(`DROP INDEX outbound_messages_dead_idx`);
    await q.query(`ALTER TABLE outbound_messages DROP COLUMN dead_lettered_at`);
  }
}
