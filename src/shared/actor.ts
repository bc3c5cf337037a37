import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who makes a change, as the audit log names them: an API token (its id and name; the
 * configured administrator token has no id), the CLI with the operating-system user running it,
 * or the engine itself (work no person started: a sign-in completing in the background is still
 * its starter's, since the context follows the promises and timers it started).
 */
export type Actor =
  | { kind: 'token'; tokenId: string | null; name: string }
  | { kind: 'cli'; name: string }
  | { kind: 'engine'; name: 'engine' };

export const ENGINE_ACTOR: Actor = { kind: 'engine', name: 'engine' };

const current = new AsyncLocalStorage<Actor>();

/** Runs `fn` on behalf of `actor`: changes it makes (and the work it starts) are audited as theirs. */
export function runAs<T>(actor: Actor, fn: () => T): T {
  return current.run(actor, fn);
}

/** The actor of the work running now; the engine when no request or command started it. */
export function currentActor(): Actor {
  return current.getStore() ?? ENGINE_ACTOR;
}
