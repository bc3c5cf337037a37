import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The proxy an e-mail server's IMAP and SMTP connections go through: null for the engine's
 * default (MAILROOM_MAIL_PROXY, or none), `none` for a direct connection, else a name of
 * MAILROOM_PROXIES.
 */
export class ServerProxy1764000000014 implements MigrationInterface {
  name = 'ServerProxy1764000000014';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE email_servers ADD COLUMN proxy text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE email_servers DROP COLUMN proxy`);
  }
}
