import { MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { storedMessages } from '../shared/metrics.js';
import type { RetentionPolicy, RetentionRun, StorageUse } from '../store/lifecycle-repositories.js';
import type { Store } from '../store/store.js';
import { ErasureService, type OutboundEraser } from './erasure.js';
import { RetentionJob, type DeadLetterDropper, type RetentionOptions } from './retention-job.js';

export type { ErasureInput, ErasureReceipt, OutboundEraser } from './erasure.js';
export type { RetentionPolicy, RetentionRun, StorageUse } from '../store/lifecycle-repositories.js';
export { RetentionJob } from './retention-job.js';
export { exportTenant, type ExportReport, type ConfigurationReader } from './export.js';

/** [36500] the longest retention one may set, days (a hundred years; null keeps forever). */
export const MAX_RETENTION_DAYS = 36_500;
/** [50] retention runs and erasure receipts listed per tenant, newest first. */
export const LISTED_RUNS = 50;
/** [300000] how long the per-tenant storage figures of /metrics are reused, ms (they cost a scan). */
const STORAGE_METRICS_TTL_MS = 300_000;

/** The fields of a retention policy, in the order they are shown. */
export const POLICY_FIELDS = ['rawSourceDays', 'messageBodyDays', 'messageDays', 'outboundDays', 'logDays'] as const;

/**
 * Changes the fields of a tenant's retention that `patch` gives (a number of days, or null:
 * forever); the others stay. The API and `mailroom retention set` both come here.
 */
export async function setRetention(
  deps: { store: Store; logger: Logger },
  tenantId: string,
  patch: Partial<RetentionPolicy>,
): Promise<RetentionPolicy> {
  for (const field of POLICY_FIELDS) {
    const days = patch[field];
    if (days === undefined || days === null) continue;
    if (!Number.isInteger(days) || days < 1 || days > MAX_RETENTION_DAYS) {
      throw new MailroomError(
        'VALIDATION_FAILED',
        `${field} must be a whole number of days from 1 to ${MAX_RETENTION_DAYS}, or null (forever)`,
        {
          field,
        },
      );
    }
  }
  const before = await deps.store.lifecycle.policy(tenantId);
  const policy = { ...before };
  for (const field of POLICY_FIELDS) if (patch[field] !== undefined) policy[field] = patch[field] as number | null;
  // A part kept longer than the whole message would never be kept that long: refused, not guessed.
  for (const field of ['messageBodyDays', 'rawSourceDays'] as const) {
    const days = policy[field];
    if (days !== null && policy.messageDays !== null && days > policy.messageDays) {
      throw new MailroomError(
        'VALIDATION_FAILED',
        `${field} (${days}) must not exceed messageDays (${policy.messageDays}): whole messages go after messageDays`,
        { field },
      );
    }
  }
  await deps.store.transaction(async (tx) => {
    await tx.lifecycle.setPolicy(tenantId, policy);
    const changed = POLICY_FIELDS.filter((f) => before[f] !== policy[f]);
    await tx.audit.record({
      tenantId,
      action: 'retention.changed',
      targetKind: 'tenant',
      targetId: tenantId,
      detail: {
        before: Object.fromEntries(changed.map((f) => [f, before[f]])),
        after: Object.fromEntries(changed.map((f) => [f, policy[f]])),
      },
    });
  });
  deps.logger.info({ tenantId, retention: policy }, 'retention changed');
  return policy;
}

/** The data lifecycle: retention per tenant, erasure on request, storage figures. */
export interface Lifecycle {
  retention(tenantId: string): Promise<RetentionPolicy>;
  /** Changes the fields given (a number of days, or null: forever); the others stay. */
  setRetention(tenantId: string, patch: Partial<RetentionPolicy>): Promise<RetentionPolicy>;
  erasures: ErasureService;
  /** What the retention job deleted of the tenant at each of its last runs, newest first. */
  retentionRuns(tenantId: string): Promise<RetentionRun[]>;
  storage(tenantId: string): Promise<StorageUse>;
  /** Fills the per-tenant storage gauges (a collector of /metrics). */
  collectStorage(): Promise<void>;
  job: RetentionJob;
}

export interface LifecycleDeps {
  store: Store;
  logger: Logger;
  outbound: OutboundEraser & { dropDeadLetter: DeadLetterDropper };
  options?: Partial<RetentionOptions>;
}

export function createLifecycle(deps: LifecycleDeps): Lifecycle {
  const { store } = deps;
  const logger = deps.logger.child({ component: 'lifecycle' });
  let storageAt = 0;
  return {
    retention: (tenantId) => store.lifecycle.policy(tenantId),
    setRetention: (tenantId, patch) => setRetention({ store, logger }, tenantId, patch),
    erasures: new ErasureService(store, deps.outbound, logger),
    retentionRuns: (tenantId) => store.lifecycle.runs(tenantId, LISTED_RUNS),
    async storage(tenantId) {
      const use = await store.lifecycle.storage(tenantId);
      return use.get(tenantId) ?? { messages: 0, messageBytes: 0, sources: 0, sourceBytes: 0, sourcesByStore: {} };
    },
    async collectStorage() {
      if (Date.now() - storageAt < STORAGE_METRICS_TTL_MS) return;
      storageAt = Date.now();
      const use = await store.lifecycle.storage();
      storedMessages.reset();
      for (const [tenantId, u] of use) {
        storedMessages.set({ tenant_id: tenantId, kind: 'messages' }, u.messages);
        storedMessages.set({ tenant_id: tenantId, kind: 'message_bytes' }, u.messageBytes);
        storedMessages.set({ tenant_id: tenantId, kind: 'sources' }, u.sources);
        storedMessages.set({ tenant_id: tenantId, kind: 'source_bytes' }, u.sourceBytes);
      }
    },
    job: new RetentionJob({ store, logger, dropDeadLetter: deps.outbound.dropDeadLetter, options: deps.options }),
  };
}
