import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The message trace: compact events of what happened to a message (inbound or outbound), each
 * appended by the statement that makes the change. What the message rows hold already (fetched
 * from which mailbox and UID, the classification, the quarantine reason, the current status) is
 * read from them, not copied here. No foreign keys: events stay readable after their message is
 * gone, and data lifecycle deletes them by tenant and age (trace_events_tenant_at_idx).
 */
export class TraceEvents1764000000026 implements MigrationInterface {
  name = 'TraceEvents1764000000026';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE trace_events (
        id bigserial PRIMARY KEY,
        tenant_id uuid NOT NULL,
        message_id uuid NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        type text NOT NULL,
        detail jsonb
      )`);
    await q.query(`CREATE INDEX trace_events_message_idx ON trace_events (message_id, id)`);
    await q.query(`CREATE INDEX trace_events_tenant_at_idx ON trace_events (tenant_id, at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE trace_events`);
  }
}
