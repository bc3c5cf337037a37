import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Tenants, e-mail servers, destinations and API tokens. */
export class InitialSchema1764000000001 implements MigrationInterface {
  name = 'InitialSchema1764000000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tenants (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        name_key text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX tenants_name_key_uq ON tenants (name_key)`);

    await q.query(`
      CREATE TABLE email_servers (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        name text NOT NULL,
        name_key text NOT NULL,
        enabled boolean NOT NULL,
        imap_host text NOT NULL,
        imap_port integer NOT NULL,
        imap_secure boolean NOT NULL,
        imap_user text NOT NULL,
        imap_auth_method text NOT NULL,
        imap_password_sealed text,
        imap_oauth jsonb,
        imap_client_secret_sealed text,
        imap_max_sessions integer NOT NULL,
        account_key text NOT NULL,
        smtp_host text NOT NULL,
        smtp_port integer NOT NULL,
        smtp_secure boolean NOT NULL,
        smtp_auth_mode text NOT NULL,
        smtp_auth_method text,
        smtp_user text,
        smtp_password_sealed text,
        smtp_oauth jsonb,
        smtp_client_secret_sealed text,
        smtp_heartbeat_address text,
        smtp_rate_limit_per_hour integer NOT NULL,
        post_process text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT email_servers_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE RESTRICT
      )`);
    await q.query(`CREATE UNIQUE INDEX email_servers_account_key_uq ON email_servers (account_key)`);
    await q.query(`CREATE UNIQUE INDEX email_servers_tenant_name_uq ON email_servers (tenant_id, name_key)`);

    await q.query(`
      CREATE TABLE destinations (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        name text NOT NULL,
        name_key text NOT NULL,
        address text NOT NULL,
        address_key text NOT NULL,
        description text NOT NULL,
        from_text text NOT NULL,
        monitored boolean NOT NULL,
        outgoing boolean NOT NULL,
        server_id uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT destinations_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE RESTRICT,
        CONSTRAINT destinations_server_fk FOREIGN KEY (server_id) REFERENCES email_servers (id) ON DELETE RESTRICT
      )`);
    await q.query(`CREATE UNIQUE INDEX destinations_tenant_name_uq ON destinations (tenant_id, name_key)`);
    await q.query(`CREATE UNIQUE INDEX destinations_tenant_address_uq ON destinations (tenant_id, address_key)`);
    await q.query(`CREATE INDEX destinations_server_idx ON destinations (server_id)`);

    await q.query(`
      CREATE TABLE api_tokens (
        id uuid PRIMARY KEY,
        tenant_id uuid,
        name text NOT NULL,
        token_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        CONSTRAINT api_tokens_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE UNIQUE INDEX api_tokens_hash_uq ON api_tokens (token_hash)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE api_tokens`);
    await q.query(`DROP TABLE destinations`);
    await q.query(`DROP TABLE email_servers`);
    await q.query(`DROP TABLE tenants`);
  }
}
