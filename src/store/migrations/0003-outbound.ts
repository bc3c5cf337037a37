import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Outbound mail: the status of every accepted message, and the send log the hourly rate limit reads. */
export class Outbound1764000000003 implements MigrationInterface {
  name = 'Outbound1764000000003';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE outbound_messages (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        destination_id uuid NOT NULL,
        server_id uuid NOT NULL,
        status text NOT NULL,
        message_id_header text NOT NULL,
        conversation_id uuid,
        subject text NOT NULL,
        recipients jsonb NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        last_reply text,
        last_response_code integer,
        next_attempt_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        first_attempt_at timestamptz,
        sent_at timestamptz,
        instance_id text NOT NULL
      )`);
    await q.query(`CREATE INDEX outbound_messages_server_idx ON outbound_messages (server_id, status)`);
    await q.query(`CREATE INDEX outbound_messages_message_id_idx ON outbound_messages (tenant_id, message_id_header)`);

    await q.query(`
      CREATE TABLE smtp_send_log (
        id bigserial PRIMARY KEY,
        server_id uuid NOT NULL,
        sent_at timestamptz NOT NULL,
        outbound_id uuid
      )`);
    await q.query(`CREATE INDEX smtp_send_log_server_time_idx ON smtp_send_log (server_id, sent_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE smtp_send_log`);
    await q.query(`DROP TABLE outbound_messages`);
  }
}
