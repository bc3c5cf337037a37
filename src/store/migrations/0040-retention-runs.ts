import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What each retention run deleted per tenant (`removed`: counts per kind), for the console's
 * retention page and `GET …/retention/runs`: until now a run left only a log line and counters.
 * The job keeps a tenant's newest runs (see RetentionJob) and deletes the older rows.
 */
export class RetentionRuns1764000000040 implements MigrationInterface {
  name = 'RetentionRuns1764000000040';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE retention_runs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz NOT NULL,
        removed jsonb NOT NULL,
        CONSTRAINT retention_runs_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX retention_runs_tenant_idx ON retention_runs (tenant_id, started_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE retention_runs`);
  }
}
