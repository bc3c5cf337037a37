import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Per e-mail server (issue 30): a PEM CA file trusted for SMTP TLS, as `imap_ca_file` is for IMAP
 * (a relay with the company's own certificate), and each side's TLS mode said plainly
 * (`shared/tls-mode.ts`), taken from what `secure` always meant. `imap_secure` and `smtp_secure`
 * stay, written as `tls = 'implicit'`.
 */
export class ServerTls1764000000021 implements MigrationInterface {
  name = 'ServerTls1764000000021';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE email_servers ADD COLUMN smtp_ca_file text`);
    for (const side of ['imap', 'smtp']) {
      await q.query(`ALTER TABLE email_servers ADD COLUMN ${side}_tls text`);
      await q.query(
        `UPDATE email_servers SET ${side}_tls = CASE WHEN ${side}_secure THEN 'implicit' ELSE 'starttls-when-offered' END`,
      );
      await q.query(`ALTER TABLE email_servers ALTER COLUMN ${side}_tls SET NOT NULL`);
      await q.query(
        `ALTER TABLE email_servers ADD CONSTRAINT email_servers_${side}_tls_check CHECK ` +
          `(${side}_tls IN ('implicit', 'starttls-required', 'starttls-when-offered', 'none'))`,
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE email_servers DROP COLUMN imap_tls`);
    await q.query(`ALTER TABLE email_servers DROP COLUMN smtp_tls`);
    await q.query(`ALTER TABLE email_servers DROP COLUMN smtp_ca_file`);
  }
}
