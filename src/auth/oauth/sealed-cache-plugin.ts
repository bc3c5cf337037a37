import type { ICachePlugin, TokenCacheContext } from '@azure/msal-node';
import type { GrantKey, OAuthGrants } from './grants.js';

/**
 * An MSAL cache plugin that keeps one grant's token cache in the database, sealed. Every access
 * reads the stored cache first, so a refresh token rotated by another instance is used; every
 * change (new access token, rotated refresh token) is written back in one statement.
 */
export class SealedCachePlugin implements ICachePlugin {
  /**
   * @param fresh a new sign-in: start from an empty cache, and replace the stored one only when
   *   the sign-in succeeds (until then the previous grant keeps working).
   */
  constructor(
    private readonly grants: OAuthGrants,
    private readonly key: GrantKey,
    private readonly fresh = false,
  ) {}

  async beforeCacheAccess(context: TokenCacheContext): Promise<void> {
    if (this.fresh) return;
    const serialized = await this.grants.loadCache(this.key);
    if (serialized !== null) context.tokenCache.deserialize(serialized);
  }

  async afterCacheAccess(context: TokenCacheContext): Promise<void> {
    if (!context.cacheHasChanged) return;
    await this.grants.saveCache(this.key, context.tokenCache.serialize());
  }
}
