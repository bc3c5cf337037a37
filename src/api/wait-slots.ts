import type { Principal } from '../accounts/index.js';
import { MailroomError } from '../shared/errors.js';

/** [5] seconds a caller refused a wait is asked to wait before trying again. */
const RETRY_AFTER_SECONDS = 5;

/**
 * How many long polls and event streams each API token, and each tenant's tokens together, hold
 * open at once: one token (or one tenant making tokens) cannot take every socket and timer of the
 * engine. The next one beyond a limit is answered `429 TOO_MANY_WAITS` with `Retry-After`.
 */
export class WaitSlots {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly perToken: number,
    /** All the tenant's tokens together (a tenant can make more tokens). */
    private readonly perTenant: number,
  ) {}

  /** Takes a slot for the request's token in `tenantId`; the answer gives it back (call it once). */
  take(principal: Principal, tenantId: string): () => void {
    const tokenKey =
      principal.kind === 'admin' ? `admin:${principal.tokenId ?? 'config'}` : `token:${principal.tokenId}`;
    const tenantKey = `tenant:${tenantId}`;
    const byToken = this.open.get(tokenKey) ?? 0;
    const byTenant = this.open.get(tenantKey) ?? 0;
    if (byToken >= this.perToken || byTenant >= this.perTenant) {
      const [held, limit, whose] =
        byToken >= this.perToken
          ? [byToken, this.perToken, 'this API token']
          : [byTenant, this.perTenant, "this tenant's tokens"];
      throw new MailroomError(
        'TOO_MANY_WAITS',
        `${whose} already hold ${held} long polls or event streams open (at most ${limit}); close one or try again later`,
        { retryAfterSeconds: RETRY_AFTER_SECONDS },
      );
    }
    this.open.set(tokenKey, byToken + 1);
    this.open.set(tenantKey, byTenant + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      for (const key of [tokenKey, tenantKey]) {
        const now = (this.open.get(key) ?? 1) - 1;
        if (now <= 0) this.open.delete(key);
        else this.open.set(key, now);
      }
    };
  }
}
