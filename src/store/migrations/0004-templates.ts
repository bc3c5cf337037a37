import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Response files: which files each destination offers, and its locale and time zone for dates. */
export class Templates1764000000004 implements MigrationInterface {
  name = 'Templates1764000000004';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE destination_response_files (
        destination_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        files jsonb,
        locale text,
        time_zone text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT destination_response_files_destination_fk
          FOREIGN KEY (destination_id) REFERENCES destinations (id) ON DELETE CASCADE
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE destination_response_files`);
  }
}
