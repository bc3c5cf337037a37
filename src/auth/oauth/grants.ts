import type { SecretSealer } from '../../shared/sealed-secrets.js';
import type { GrantKey, OAuthGrantRow, OAuthPurpose, OAuthStatus } from '../../store/oauth-grants.js';
import type { Store } from '../../store/store.js';

export type { GrantKey } from '../../store/oauth-grants.js';

/**
 * The persisted side of OAuth 2.0 grants: status rows and the MSAL token cache, sealed with the
 * server's tenant and id and the purpose as context, so a cache copied elsewhere does not open.
 */
export class OAuthGrants {
  constructor(
    private readonly store: Store,
    private readonly sealer: SecretSealer,
  ) {}

  private context(key: { tenantId: string; serverId: string; purpose: OAuthPurpose }) {
    return { tenantId: key.tenantId, rowId: key.serverId, field: `oauth.${key.purpose}.tokenCache` };
  }

  get(serverId: string, purpose: OAuthPurpose): Promise<OAuthGrantRow | null> {
    return this.store.oauthGrants.get(serverId, purpose);
  }

  /** The serialized token cache of a grant of this app, opened; null when there is none. */
  async loadCache(key: GrantKey): Promise<string | null> {
    const row = await this.store.oauthGrants.get(key.serverId, key.purpose);
    if (!row || row.cacheSealed === null || row.appKey !== key.appKey) return null;
    return this.sealer.open(row.cacheSealed, this.context(key));
  }

  async saveCache(key: GrantKey, serialized: string): Promise<void> {
    await this.store.oauthGrants.saveCache(key, this.sealer.seal(serialized, this.context(key)));
  }

  async setStatus(
    key: GrantKey,
    fields: { status: OAuthStatus; account?: string | null; error: string | null; expiresAt?: Date | null },
  ): Promise<void> {
    await this.store.oauthGrants.setStatus(key, fields);
  }
}
