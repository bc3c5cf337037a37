import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Several engine instances on one database: each instance says it is alive in `engine_instances`
 * (one row renewed on a heartbeat), and each e-mail server is watched by the instance named in its
 * `server_leases` row. A lease is valid while its owner's row is; when the owner stops renewing,
 * all its leases lapse at once and the other instances take them.
 */
export class Leases1764000000008 implements MigrationInterface {
  name = 'Leases1764000000008';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE engine_instances (
        owner text NOT NULL,
        instance_id text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        CONSTRAINT engine_instances_pk PRIMARY KEY (owner)
      )`);
    await q.query(`
      CREATE TABLE server_leases (
        server_id uuid NOT NULL,
        owner text NOT NULL,
        acquired_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT server_leases_pk PRIMARY KEY (server_id),
        CONSTRAINT server_leases_server_fk FOREIGN KEY (server_id) REFERENCES email_servers (id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX server_leases_owner_idx ON server_leases (owner)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE server_leases`);
    await q.query(`DROP TABLE engine_instances`);
  }
}
