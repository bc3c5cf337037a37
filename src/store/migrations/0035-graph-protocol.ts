import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 27, part 1: Microsoft Graph as a server protocol.
 *
 * - `email_servers.protocol`: `imap` (IMAP and SMTP, every server so far) or `graph` (delta
 *   queries, `$value` and sendMail through Microsoft Graph).
 * - `mailbox_checkpoints.delta_link`: a Graph folder's checkpoint, the URL to ask next (a delta
 *   round's next link, or the last round's delta link), committed with the messages it listed.
 */
export class GraphProtocol1764000000035 implements MigrationInterface {
  name = 'GraphProtocol1764000000035';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE email_servers ADD COLUMN protocol text NOT NULL DEFAULT 'imap'`);
    await q.query(
      `ALTER TABLE email_servers ADD CONSTRAINT email_servers_protocol_check CHECK (protocol IN ('imap', 'graph'))`,
    );
    await q.query(`ALTER TABLE mailbox_checkpoints ADD COLUMN delta_link text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE mailbox_checkpoints DROP COLUMN delta_link`);
    await q.query(`ALTER TABLE email_servers DROP CONSTRAINT email_servers_protocol_check`);
    await q.query(`ALTER TABLE email_servers DROP COLUMN protocol`);
  }
}
