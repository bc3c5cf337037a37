import type { ICachePlugin, TokenCacheContext } from '@azure/msal-node';
import type { GrantKey, OAuthGrants } from './grants.js';

/**
 * The MSAL cache plugin of a new sign-in (device code): it starts from an empty cache and
 * replaces the stored one, sealed and in one statement, only when the sign-in succeeds; until
 * then the previous grant keeps working. (Access tokens of an existing grant come from
 * `TokenProvider`, which loads and saves the cache itself under the grant's refresh lock.)
 */
export class SealedCachePlugin implements ICachePlugin {
  constructor(
    private readonly grants: OAuthGrants,
    private readonly key: GrantKey,
  ) {}

  beforeCacheAccess(): Promise<void> {
    return Promise.resolve();
  }

  async afterCacheAccess(context: TokenCacheContext): Promise<void> {
    if (!context.cacheHasChanged) return;
    await this.grants.saveCache(this.key, context.tokenCache.serialize());
  }
}
