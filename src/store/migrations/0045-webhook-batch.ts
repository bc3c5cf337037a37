import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Batched webhook delivery, opt-in per destination: `webhook_batch` holds `{maxEvents, maxWaitMs}`
 * (null: one POST per event, as before). A batching destination's outbox rows fall due
 * `maxWaitMs` after they are queued, or as soon as `maxEvents` of them wait.
 */
export class WebhookBatch1764000000045 implements MigrationInterface {
  name = 'WebhookBatch1764000000045';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE destinations ADD COLUMN webhook_batch jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE destinations DROP COLUMN webhook_batch`);
  }
}
