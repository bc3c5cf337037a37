import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An OAuth grant's key (`app_key`) also names where its tokens go: the mailbox host and user of
 * its purpose (`accountPlaceOf` in src/auth/oauth/settings.ts, which must give the same string).
 * Grants saved before get theirs from their server as it is now, so sign-ins made before the
 * upgrade stay valid.
 */
export class GrantAccountPlace1764000000015 implements MigrationInterface {
  name = 'GrantAccountPlace1764000000015';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      UPDATE oauth_grants g SET app_key = g.app_key || '|' || CASE
          WHEN g.purpose = 'smtp' THEN 'smtp:' || lower(btrim(s.smtp_host)) || '/' || coalesce(s.smtp_user, '')
          ELSE 'imap:' || lower(btrim(s.imap_host)) || '/' || s.imap_user
        END
        FROM email_servers s
       WHERE s.id = g.server_id`);
  }

  async down(q: QueryRunner): Promise<void> {
    // The place is the last of the key's |-separated parts (a host or user name holds no |).
    await q.query(`UPDATE oauth_grants SET app_key = regexp_replace(app_key, '\\|[^|]*$', '')`);
  }
}
