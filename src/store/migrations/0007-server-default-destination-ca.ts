import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Per e-mail server: the default destination (where a message matching no monitored destination
 * goes; cleared when that destination is deleted) and a PEM CA file trusted for IMAP TLS.
 */
export class ServerDefaultDestinationCa1764000000007 implements MigrationInterface {
  name = 'ServerDefaultDestinationCa1764000000007';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE email_servers ADD COLUMN default_destination_id uuid`);
    await q.query(`ALTER TABLE email_servers ADD COLUMN imap_ca_file text`);
    await q.query(
      `ALTER TABLE email_servers ADD CONSTRAINT email_servers_default_destination_fk
         FOREIGN KEY (default_destination_id) REFERENCES destinations (id) ON DELETE SET NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE email_servers DROP CONSTRAINT email_servers_default_destination_fk`);
    await q.query(`ALTER TABLE email_servers DROP COLUMN imap_ca_file`);
    await q.query(`ALTER TABLE email_servers DROP COLUMN default_destination_id`);
  }
}
