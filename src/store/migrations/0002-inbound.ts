import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Inbound mail: mailbox checkpoints, stored messages with their raw source, deliveries to destinations, alerts. */
export class Inbound1764000000002 implements MigrationInterface {
  name = 'Inbound1764000000002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE mailbox_checkpoints (
        server_id uuid NOT NULL,
        mailbox text NOT NULL,
        uid_validity bigint NOT NULL,
        last_uid bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT mailbox_checkpoints_pk PRIMARY KEY (server_id, mailbox),
        CONSTRAINT mailbox_checkpoints_server_fk FOREIGN KEY (server_id) REFERENCES email_servers (id) ON DELETE CASCADE
      )`);

    await q.query(`
      CREATE TABLE inbound_messages (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        server_id uuid NOT NULL,
        mailbox text NOT NULL,
        uid_validity bigint NOT NULL,
        uid bigint NOT NULL,
        status text NOT NULL,
        quarantine_reason text,
        message_id_header text,
        dedupe_key text NOT NULL,
        conversation_id uuid NOT NULL,
        subject text NOT NULL,
        from_address text,
        from_name text,
        recipients jsonb NOT NULL,
        sent_at timestamptz,
        received_at timestamptz NOT NULL,
        ingested_at timestamptz NOT NULL DEFAULT now(),
        size integer NOT NULL,
        classification jsonb NOT NULL,
        in_reply_to text,
        message_references jsonb NOT NULL,
        body_text text,
        body_html text,
        attachments jsonb NOT NULL,
        post_processed_at timestamptz,
        CONSTRAINT inbound_messages_server_fk FOREIGN KEY (server_id) REFERENCES email_servers (id) ON DELETE CASCADE
      )`);
    await q.query(
      `CREATE UNIQUE INDEX inbound_messages_uid_uq ON inbound_messages (server_id, mailbox, uid_validity, uid)`,
    );
    await q.query(`CREATE INDEX inbound_messages_dedupe_idx ON inbound_messages (server_id, dedupe_key)`);
    await q.query(`CREATE INDEX inbound_messages_message_id_idx ON inbound_messages (tenant_id, message_id_header)`);
    await q.query(`CREATE INDEX inbound_messages_status_idx ON inbound_messages (server_id, status)`);

    await q.query(`
      CREATE TABLE inbound_raw (
        message_id uuid PRIMARY KEY,
        raw bytea NOT NULL,
        CONSTRAINT inbound_raw_message_fk FOREIGN KEY (message_id) REFERENCES inbound_messages (id) ON DELETE CASCADE
      )`);

    await q.query(`
      CREATE TABLE inbound_deliveries (
        destination_id uuid NOT NULL,
        seq bigint NOT NULL,
        message_id uuid NOT NULL,
        tenant_id uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        claimed_by text,
        claimed_at timestamptz,
        acked_at timestamptz,
        CONSTRAINT inbound_deliveries_pk PRIMARY KEY (destination_id, seq),
        CONSTRAINT inbound_deliveries_destination_fk FOREIGN KEY (destination_id) REFERENCES destinations (id) ON DELETE CASCADE,
        CONSTRAINT inbound_deliveries_message_fk FOREIGN KEY (message_id) REFERENCES inbound_messages (id) ON DELETE CASCADE
      )`);
    await q.query(
      `CREATE UNIQUE INDEX inbound_deliveries_message_uq ON inbound_deliveries (destination_id, message_id)`,
    );

    await q.query(`
      CREATE TABLE alerts (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        server_id uuid,
        kind text NOT NULL,
        message text NOT NULL,
        details jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT alerts_server_fk FOREIGN KEY (server_id) REFERENCES email_servers (id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX alerts_server_idx ON alerts (server_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE alerts`);
    await q.query(`DROP TABLE inbound_deliveries`);
    await q.query(`DROP TABLE inbound_raw`);
    await q.query(`DROP TABLE inbound_messages`);
    await q.query(`DROP TABLE mailbox_checkpoints`);
  }
}
