import type { SecretSealer } from '../../shared/sealed-secrets.js';
import type { GrantKey, OAuthGrantRow, OAuthPurpose, OAuthStatus } from '../../store/oauth-grants.js';
import type { Store } from '../../store/store.js';
import { KeyedLock } from './keyed-lock.js';
import { Semaphore } from './semaphore.js';

export type { GrantKey } from '../../store/oauth-grants.js';

/** A grant's token cache as read under its refresh lock. */
export interface LockedCache {
  /** The stored cache, opened; null when there is none for this app. */
  readonly serialized: string | null;
  /** The stored cache as sealed in the row (what a later conditional status write compares with). */
  readonly sealed: string | null;
  /** Replaces the stored cache before the lock is released. */
  save(serialized: string): Promise<void>;
}

/**
 * [4] most refresh transactions one process holds at once on PostgreSQL. Each keeps a pooled
 * connection while the identity provider answers (up to the HTTP client's 30 s): a burst of
 * refreshes (a thousand mailboxes reconnecting) must leave the pool to everything else.
 */
const REFRESH_TRANSACTIONS = 4;

/**
 * PGlite is one process's database: there a lock in memory, shared by every service on the
 * same store, is as strong as a row lock, and it does not hold the single database session
 * across a call to the identity provider.
 */
const localLocks = new WeakMap<Store, KeyedLock>();
const refreshSlots = new WeakMap<Store, Semaphore>();

function localLockOf(store: Store): KeyedLock {
  let lock = localLocks.get(store);
  if (!lock) {
    lock = new KeyedLock();
    localLocks.set(store, lock);
  }
  return lock;
}

function refreshSlotsOf(store: Store): Semaphore {
  let slots = refreshSlots.get(store);
  if (!slots) {
    slots = new Semaphore(REFRESH_TRANSACTIONS);
    refreshSlots.set(store, slots);
  }
  return slots;
}

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

  /** The serialized token cache of a stored grant of this app, opened; null when there is none. */
  openCache(row: OAuthGrantRow | null, key: GrantKey): string | null {
    if (!row || row.cacheSealed === null || row.appKey !== key.appKey) return null;
    return this.sealer.open(row.cacheSealed, this.context(key));
  }

  /** The serialized token cache of a grant of this app, opened; null when there is none. */
  async loadCache(key: GrantKey): Promise<string | null> {
    return this.openCache(await this.store.oauthGrants.get(key.serverId, key.purpose), key);
  }

  /** Replaces the stored cache (a new sign-in); waits for a refresh of the grant in progress. */
  async saveCache(key: GrantKey, serialized: string): Promise<void> {
    const save = () => this.store.oauthGrants.saveCache(key, this.sealer.seal(serialized, this.context(key)));
    // On PostgreSQL the statement itself waits for the row lock of a refresh in progress.
    await (this.store.kind === 'pglite' ? localLockOf(this.store).run(lockId(key), save) : save());
  }

  /**
   * Runs `fn` holding the grant's refresh lock, across every instance on this database: a
   * transaction with the grant row locked (`SELECT … FOR UPDATE`), the cache read inside it and
   * saved before it commits. "Load cache, refresh, save the rotated refresh token" is thus one
   * step: no instance refreshes with a cache another has made stale. `fn` must not write the
   * grant row other than through `save` (it would wait for its own lock).
   */
  async withRefreshLock<T>(key: GrantKey, fn: (cache: LockedCache) => Promise<T>): Promise<T> {
    const locked = (row: OAuthGrantRow | null, save: (sealed: string) => Promise<void>): LockedCache => ({
      serialized: this.openCache(row, key),
      sealed: row?.cacheSealed ?? null,
      save: (serialized) => save(this.sealer.seal(serialized, this.context(key))),
    });
    if (this.store.kind === 'pglite') {
      return localLockOf(this.store).run(lockId(key), async () =>
        fn(
          locked(await this.store.oauthGrants.get(key.serverId, key.purpose), (sealed) =>
            this.store.oauthGrants.saveCache(key, sealed),
          ),
        ),
      );
    }
    return refreshSlotsOf(this.store).run(() =>
      this.store.transaction(async (tx) =>
        fn(
          locked(await tx.oauthGrants.getForUpdate(key.serverId, key.purpose), (sealed) =>
            tx.oauthGrants.saveCache(key, sealed),
          ),
        ),
      ),
    );
  }

  /**
   * Sets a grant's status. With `onlyIfCacheSealed`, only while the grant still holds that token
   * cache (see `OAuthGrantRepository.setStatus`); returns whether it was written.
   */
  setStatus(
    key: GrantKey,
    fields: { status: OAuthStatus; account?: string | null; error: string | null; expiresAt?: Date | null },
    onlyIfCacheSealed?: string | null,
  ): Promise<boolean> {
    return this.store.oauthGrants.setStatus(key, fields, onlyIfCacheSealed);
  }
}

function lockId(key: GrantKey): string {
  return `${key.serverId}|${key.purpose}`;
}
