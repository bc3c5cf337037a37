import type { Principal } from '../accounts/index.js';
import { MailroomError } from '../shared/errors.js';

/** [5] seconds a caller refused a wait is asked to wait before trying again. */
const RETRY_AFTER_SECONDS = 5;

/**
 * How many long polls and event streams each API token holds open at once: one token cannot
 * take every socket and timer of the engine. The next one beyond `perToken` is answered
 * `429 TOO_MANY_WAITS` with `Retry-After`.
 */
export class WaitSlots {
  private readonly open = new Map<string, number>();

  constructor(private readonly perToken: number) {}

  /** Takes a slot for the request's token; the answer gives it back (call it once). */
  take(principal: Principal): () => void {
    const key = principal.kind === 'admin' ? 'admin' : `token:${principal.tokenId}`;
    const held = this.open.get(key) ?? 0;
    if (held >= this.perToken) {
      throw new MailroomError(
        'TOO_MANY_WAITS',
        `this API token already holds ${held} long polls or event streams open (at most ${this.perToken}); close one or try again later`,
        { retryAfterSeconds: RETRY_AFTER_SECONDS },
      );
    }
    this.open.set(key, held + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const now = (this.open.get(key) ?? 1) - 1;
      if (now <= 0) this.open.delete(key);
      else this.open.set(key, now);
    };
  }
}
