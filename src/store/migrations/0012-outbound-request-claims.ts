import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A request left for another instance can be withdrawn while it waits (its instance may never
 * come back). The holder claims a request before carrying it out (`claimed_at`), so that a
 * request is either withdrawn or carried out, never both.
 */
export class OutboundRequestClaims1764000000012 implements MigrationInterface {
  name = 'OutboundRequestClaims1764000000012';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbound_requests ADD COLUMN claimed_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE outbound_requests DROP COLUMN claimed_at`);
  }
}
