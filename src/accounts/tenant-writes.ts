import { MailroomError } from '../shared/errors.js';
import { uniqueViolationOf, type Store, type StoreSession } from '../store/store.js';

export function tenantNotFound(tenantId: string): MailroomError {
  return new MailroomError('TENANT_NOT_FOUND', `tenant ${tenantId} does not exist`, { details: { tenantId } });
}

/** Unique indexes of a table, each with the error its collision answers (naming the field). */
export type UniqueCollisions = Readonly<Record<string, () => MailroomError>>;

/**
 * Runs a change of a tenant's settings in a transaction holding the tenant's lock, so that the
 * checks and writes of two requests never interleave. A unique-index collision (a race the checks
 * lost, e.g. with another instance) answers the error listed for that index, as the check would.
 */
export async function writeUnderTenantLock<T>(
  store: Store,
  tenantId: string,
  collisions: UniqueCollisions,
  fn: (tx: StoreSession) => Promise<T>,
): Promise<T> {
  try {
    return await store.transaction(async (tx) => {
      if (!(await tx.tenants.lock(tenantId))) throw tenantNotFound(tenantId);
      return fn(tx);
    });
  } catch (err) {
    const index = uniqueViolationOf(err);
    const collision = index === undefined ? undefined : collisions[index];
    throw collision ? collision() : err;
  }
}
