import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Erasures on request: one receipt per request, which keeps no address, only a salted SHA-256 of
 * it (`address_hash`, with its `salt`), the date range asked for, what was removed per kind and
 * when it finished (null while it runs: repeating the request carries it on).
 */
export class Erasures1764000000024 implements MigrationInterface {
  name = 'Erasures1764000000024';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE erasures (
        id uuid NOT NULL,
        tenant_id uuid NOT NULL,
        address_hash text NOT NULL,
        salt text NOT NULL,
        since timestamptz,
        until timestamptz,
        counts jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        CONSTRAINT erasures_pk PRIMARY KEY (id),
        CONSTRAINT erasures_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX erasures_tenant_idx ON erasures (tenant_id, created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE erasures`);
  }
}
