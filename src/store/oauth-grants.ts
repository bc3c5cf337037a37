import { EntitySchema, type EntityManager } from 'typeorm';

/** Which side of an e-mail server an OAuth 2.0 grant serves. */
export type OAuthPurpose = 'imap' | 'smtp';

/**
 * INCOMPLETE: nobody signed in yet; PENDING: a device code waits for a person; COMPLETE: tokens
 * work; EXPIRED: the code was not used in time; REAUTH_REQUIRED: the identity provider refused
 * the refresh token (revoked, password changed, unused for 90 days); ERROR: anything else.
 */
export type OAuthStatus = 'INCOMPLETE' | 'PENDING' | 'COMPLETE' | 'EXPIRED' | 'REAUTH_REQUIRED' | 'ERROR';

export interface OAuthGrantRow {
  serverId: string;
  purpose: OAuthPurpose;
  tenantId: string;
  /** clientId + directory + authority host the grant belongs to; a changed app makes the grant void. */
  appKey: string;
  status: OAuthStatus;
  /** The signed-in account (user name), or the app for client credentials. */
  account: string | null;
  /** The serialized MSAL token cache, sealed (`SecretSealer`); never plaintext. */
  cacheSealed: string | null;
  /** What went wrong last, in words an administrator can act on. */
  error: string | null;
  /** When the last access token handed out expires. */
  expiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export const OAuthGrantEntity = new EntitySchema<OAuthGrantRow>({
  name: 'OAuthGrant',
  tableName: 'oauth_grants',
  columns: {
    serverId: { type: 'uuid', name: 'server_id', primary: true },
    purpose: { type: 'text', primary: true },
    tenantId: { type: 'uuid', name: 'tenant_id' },
    appKey: { type: 'text', name: 'app_key' },
    status: { type: 'text' },
    account: { type: 'text', nullable: true },
    cacheSealed: { type: 'text', name: 'cache_sealed', nullable: true },
    error: { type: 'text', nullable: true },
    expiresAt: { type: 'timestamptz', name: 'expires_at', nullable: true },
    createdAt: { type: 'timestamptz', name: 'created_at', createDate: true },
    updatedAt: { type: 'timestamptz', name: 'updated_at', updateDate: true },
  },
  relations: {
    server: {
      type: 'many-to-one',
      target: 'EmailServer',
      joinColumn: { name: 'server_id', foreignKeyConstraintName: 'oauth_grants_server_fk' },
      onDelete: 'CASCADE',
    },
  } as object,
});

export interface GrantKey {
  serverId: string;
  purpose: OAuthPurpose;
  tenantId: string;
  appKey: string;
  /** The server's name when the key was made, for log lines a person reads; not part of the key. */
  serverName?: string;
}

export class OAuthGrantRepository {
  constructor(private readonly em: EntityManager) {}

  get(serverId: string, purpose: OAuthPurpose): Promise<OAuthGrantRow | null> {
    return this.em.findOneBy(OAuthGrantEntity, { serverId, purpose });
  }

  /**
   * The grant row, locked (`SELECT … FOR UPDATE`) until the surrounding transaction ends: another
   * instance asking for it waits. Only inside `Store.transaction`.
   */
  getForUpdate(serverId: string, purpose: OAuthPurpose): Promise<OAuthGrantRow | null> {
    return this.em.findOne(OAuthGrantEntity, { where: { serverId, purpose }, lock: { mode: 'pessimistic_write' } });
  }

  listByServer(serverId: string): Promise<OAuthGrantRow[]> {
    return this.em.find(OAuthGrantEntity, { where: { serverId }, order: { purpose: 'ASC' } });
  }

  /** Every grant's status (no secrets): for metrics. */
  listStatuses(): Promise<Array<Pick<OAuthGrantRow, 'serverId' | 'tenantId' | 'purpose' | 'status'>>> {
    return this.em.find(OAuthGrantEntity, { select: { serverId: true, tenantId: true, purpose: true, status: true } });
  }

  /** Replaces the sealed token cache in one statement (a rotated refresh token is saved whole or not at all). */
  async saveCache(key: GrantKey, cacheSealed: string): Promise<void> {
    await this.em.query(
      `INSERT INTO oauth_grants (server_id, purpose, tenant_id, app_key, status, cache_sealed)
       VALUES ($1, $2, $3, $4, 'INCOMPLETE', $5)
       ON CONFLICT (server_id, purpose) DO UPDATE SET app_key = $4, cache_sealed = $5, updated_at = now()`,
      [key.serverId, key.purpose, key.tenantId, key.appKey, cacheSealed],
    );
  }

  /**
   * Sets the status (and account, error, expiry) of a grant, creating the row if needed. With
   * `onlyIfCacheSealed`, an existing row is changed only while it still holds that token cache
   * (a verdict on a cache that a new sign-in has replaced meanwhile is dropped). Returns whether
   * the row was written.
   */
  async setStatus(
    key: GrantKey,
    fields: { status: OAuthStatus; account?: string | null; error: string | null; expiresAt?: Date | null },
    onlyIfCacheSealed?: string | null,
  ): Promise<boolean> {
    const conditional = onlyIfCacheSealed !== undefined;
    const rows: unknown[] = await this.em.query(
      `INSERT INTO oauth_grants (server_id, purpose, tenant_id, app_key, status, account, error, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (server_id, purpose) DO UPDATE SET
         app_key = $4, status = $5, error = $7, updated_at = now(),
         account = CASE WHEN $9 THEN $6 ELSE oauth_grants.account END,
         expires_at = CASE WHEN $10 THEN $8 ELSE oauth_grants.expires_at END
       ${conditional ? 'WHERE oauth_grants.cache_sealed IS NOT DISTINCT FROM $11' : ''}
       RETURNING 1 AS written`,
      [
        key.serverId,
        key.purpose,
        key.tenantId,
        key.appKey,
        fields.status,
        fields.account ?? null,
        fields.error,
        fields.expiresAt ?? null,
        fields.account !== undefined,
        fields.expiresAt !== undefined,
        ...(conditional ? [onlyIfCacheSealed] : []),
      ],
    );
    return rows.length > 0;
  }

  async delete(serverId: string, purpose: OAuthPurpose): Promise<void> {
    await this.em.delete(OAuthGrantEntity, { serverId, purpose });
  }
}
