import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Per e-mail server: a PEM CA file trusted for SMTP TLS, as `imap_ca_file` is for IMAP (issue 30:
 * a relay with the company's own certificate).
 */
export class ServerTls1764000000021 implements MigrationInterface {
  name = 'ServerTls1764000000021';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE email_servers ADD COLUMN smtp_ca_file text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE email_servers DROP COLUMN smtp_ca_file`);
  }
}
