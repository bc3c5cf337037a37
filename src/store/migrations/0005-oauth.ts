import type { MigrationInterface, QueryRunner } from 'typeorm';

/** OAuth 2.0 grants: per e-mail server and purpose, the sign-in status and the sealed MSAL token cache. */
export class OAuth1764000000005 implements MigrationInterface {
  name = 'OAuth1764000000005';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE oauth_grants (
        server_id uuid NOT NULL,
        purpose text NOT NULL,
        tenant_id uuid NOT NULL,
        app_key text NOT NULL,
        status text NOT NULL,
        account text,
        cache_sealed text,
        error text,
        expires_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT oauth_grants_pk PRIMARY KEY (server_id, purpose),
        CONSTRAINT oauth_grants_server_fk FOREIGN KEY (server_id) REFERENCES email_servers (id) ON DELETE CASCADE
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE oauth_grants`);
  }
}
