import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Webhooks: a URL and a sealed signing secret per destination, and the durable outbox of
 * webhook deliveries (one row per routed message of a destination with a webhook), written in
 * the same transaction as the inbound delivery.
 */
export class Webhooks1764000000006 implements MigrationInterface {
  name = 'Webhooks1764000000006';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE destinations ADD COLUMN webhook_url text`);
    await q.query(`ALTER TABLE destinations ADD COLUMN webhook_secret_sealed text`);
    await q.query(`
      CREATE TABLE webhook_deliveries (
        destination_id uuid NOT NULL,
        seq bigint NOT NULL,
        tenant_id uuid NOT NULL,
        message_id uuid NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        lease_until timestamptz,
        last_attempt_at timestamptz,
        last_status integer,
        last_error text,
        last_error_at timestamptz,
        delivered_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT webhook_deliveries_pk PRIMARY KEY (destination_id, seq),
        CONSTRAINT webhook_deliveries_destination_fk FOREIGN KEY (destination_id) REFERENCES destinations (id) ON DELETE CASCADE,
        CONSTRAINT webhook_deliveries_message_fk FOREIGN KEY (message_id) REFERENCES inbound_messages (id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (delivered_at, next_attempt_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE webhook_deliveries`);
    await q.query(`ALTER TABLE destinations DROP COLUMN webhook_secret_sealed`);
    await q.query(`ALTER TABLE destinations DROP COLUMN webhook_url`);
  }
}
