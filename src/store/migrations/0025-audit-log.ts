import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The audit log: one row per change made through the API, the CLI or the console, written in the
 * transaction of the change where it has one. No foreign key to tenants: the deletion of a tenant
 * is itself audited, and data lifecycle deletes rows by tenant and age (the two indexes).
 */
export class AuditLog1764000000025 implements MigrationInterface {
  name = 'AuditLog1764000000025';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE audit_log (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        tenant_id uuid,
        actor_kind text NOT NULL,
        actor_id text,
        actor_name text NOT NULL,
        action text NOT NULL,
        target_kind text NOT NULL,
        target_id text,
        detail jsonb NOT NULL
      )`);
    await q.query(`CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, id)`);
    await q.query(`CREATE INDEX audit_log_at_idx ON audit_log (at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_log`);
  }
}
