import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

/** The error code msal-node reports when the gate turned a refresh away. */
export const REFRESH_NEEDS_LOCK = 'mailroom_refresh_needs_lock';

function isRefreshGrant(body: string | undefined): boolean {
  return new URLSearchParams(body ?? '').get('grant_type') === 'refresh_token';
}

/**
 * The network module of one grant's msal-node application: a refresh-token request reaches the
 * identity provider only while `refreshAllowed` is set, i.e. while the caller holds the grant's
 * refresh lock. Otherwise msal-node gets `400 mailroom_refresh_needs_lock` (no request is sent),
 * so a silent acquisition either finds a valid access token in the cache it was given or fails
 * with that code and the caller takes the lock. A rotated refresh token is thus never spent
 * outside the lock, not even by a refresh msal-node starts on its own.
 */
export class RefreshGate implements INetworkModule {
  refreshAllowed = false;

  constructor(private readonly inner: INetworkModule) {}

  /** Whether an msal-node error is the gate's refusal (take the lock and try again). */
  static refused(err: unknown): boolean {
    return typeof err === 'object' && err !== null && (err as { errorCode?: unknown }).errorCode === REFRESH_NEEDS_LOCK;
  }

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.inner.sendGetRequestAsync<T>(url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    if (!this.refreshAllowed && isRefreshGrant(options?.body)) {
      const body = { error: REFRESH_NEEDS_LOCK, error_description: 'a refresh runs only under the refresh lock' };
      return Promise.resolve({ status: 400, headers: {}, body: body as T });
    }
    return this.inner.sendPostRequestAsync<T>(url, options);
  }
}
