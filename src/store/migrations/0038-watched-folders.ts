import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 27 (Gmail): the folders a server's mailbox is watched in, and the server's stable id of
 * each stored message.
 *
 * - `email_servers.imap_folders`: the folders watched (a JSON array of names); empty, the
 *   engine's default (INBOX). Gmail shows labels as folders, so one message can be in several.
 * - `inbound_messages.email_id`: the id the server gives the message itself, the same in every
 *   folder it is in (Gmail's X-GM-MSGID, RFC 8474 EMAILID); null when the server gives none. A
 *   copy of a stored message found in another watched folder of the same server is not fetched
 *   again (`inbound/mailbox-sync.ts`); the index answers that per server.
 */
export class WatchedFolders1764000000038 implements MigrationInterface {
  name = 'WatchedFolders1764000000038';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE email_servers ADD COLUMN imap_folders jsonb NOT NULL DEFAULT '[]'`);
    await q.query(`ALTER TABLE inbound_messages ADD COLUMN email_id text`);
    await q.query(
      `CREATE INDEX inbound_messages_email_id_idx ON inbound_messages (server_id, email_id) WHERE email_id IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX inbound_messages_email_id_idx`);
    await q.query(`ALTER TABLE inbound_messages DROP COLUMN email_id`);
    await q.query(`ALTER TABLE email_servers DROP COLUMN imap_folders`);
  }
}
