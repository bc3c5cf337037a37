import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The pending part of each destination's webhook outbox, by `seq`: finding a destination's oldest
 * pending event (the only one that may be posted) is one index probe however many events it has
 * delivered, instead of a scan of its whole history per candidate.
 */
export class WebhookPendingSeq1764000000016 implements MigrationInterface {
  name = 'WebhookPendingSeq1764000000016';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX webhook_deliveries_pending_seq_idx ON webhook_deliveries (destination_id, seq) WHERE delivered_at IS NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX webhook_deliveries_pending_seq_idx`);
  }
}
