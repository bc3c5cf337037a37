import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Instances whose spool was given up by an administrator (the machine and its disk are gone):
 * the mail waiting there was marked failed. An instance that starts again under a retired name
 * sets the files it still holds aside as dead letters, unsent, and its name is free again.
 */
export class RetiredInstances1764000000013 implements MigrationInterface {
  name = 'RetiredInstances1764000000013';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE retired_instances (
        instance_id text PRIMARY KEY,
        retired_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE retired_instances`);
  }
}
