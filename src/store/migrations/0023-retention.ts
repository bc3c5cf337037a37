import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Retention per tenant: how many days each kind of data is kept (null: forever, which is also
 * what a tenant without a row gets, as before). The indexes let the retention job find what is
 * due oldest first, a small batch at a time, without scanning a table: the partial ones list only
 * rows that still hold what a kind removes (a source, a body), so stripped rows cost nothing.
 */
export class Retention1764000000023 implements MigrationInterface {
  name = 'Retention1764000000023';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tenant_retention (
        tenant_id uuid NOT NULL,
        raw_source_days integer,
        message_body_days integer,
        message_days integer,
        outbound_days integer,
        log_days integer,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT tenant_retention_pk PRIMARY KEY (tenant_id),
        CONSTRAINT tenant_retention_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX inbound_messages_age_idx ON inbound_messages (tenant_id, ingested_at)`);
    await q.query(
      `CREATE INDEX inbound_messages_source_age_idx ON inbound_messages (tenant_id, ingested_at)
        WHERE source_store IS NOT NULL`,
    );
    await q.query(
      `CREATE INDEX inbound_messages_body_age_idx ON inbound_messages (tenant_id, ingested_at)
        WHERE body_text IS NOT NULL OR body_html IS NOT NULL`,
    );
    await q.query(`CREATE INDEX outbound_messages_age_idx ON outbound_messages (tenant_id, created_at)`);
    await q.query(
      `CREATE INDEX webhook_deliveries_done_age_idx ON webhook_deliveries (tenant_id, created_at)
        WHERE delivered_at IS NOT NULL`,
    );
    // Deleting a message cascades to its deliveries and webhook rows: found by message, not by a scan.
    await q.query(`CREATE INDEX inbound_deliveries_message_idx ON inbound_deliveries (message_id)`);
    await q.query(`CREATE INDEX webhook_deliveries_message_idx ON webhook_deliveries (message_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX webhook_deliveries_message_idx`);
    await q.query(`DROP INDEX inbound_deliveries_message_idx`);
    await q.query(`DROP INDEX webhook_deliveries_done_age_idx`);
    await q.query(`DROP INDEX outbound_messages_age_idx`);
    await q.query(`DROP INDEX inbound_messages_body_age_idx`);
    await q.query(`DROP INDEX inbound_messages_source_age_idx`);
    await q.query(`DROP INDEX inbound_messages_age_idx`);
    await q.query(`DROP TABLE tenant_retention`);
  }
}
