import { randomUUID } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { retentionDeleted } from '../shared/metrics.js';
import type { DueDeadLetter, RemovedSource, RetentionPolicy } from '../store/lifecycle-repositories.js';
import type { Store } from '../store/store.js';

export interface RetentionOptions {
  /** [3600000] how often the job looks for what is due, ms. */
  intervalMs: number;
  /** [500] rows deleted per statement: short transactions, short locks. */
  batchSize: number;
  /**
   * [30] MAILROOM_RETENTION_WAITING_FLOOR_DAYS: a message with a delivery nobody claimed or
   * acknowledged is kept at least this long after that delivery, whatever the tenant's retention.
   */
  waitingFloorDays: number;
  /** [3600000] an orphan source younger than this is left alone (its row may be committing), ms. */
  orphanGraceMs: number;
  /** [60000] the job lease's time to live (renewed between batches), ms. */
  leaseTtlMs: number;
  /** [50] runs kept per tenant in `retention_runs` (what each deleted, for the console). */
  keepRuns: number;
}

export const DEFAULT_RETENTION_OPTIONS: RetentionOptions = {
  intervalMs: 3_600_000,
  batchSize: 500,
  waitingFloorDays: 30,
  orphanGraceMs: 3_600_000,
  leaseTtlMs: 60_000,
  keepRuns: 50,
};

export type RetentionKind =
  'sources' | 'bodies' | 'messages' | 'outbound' | 'dead_letters' | 'webhook_log' | 'send_log' | 'orphans';

export type RetentionReport = Record<RetentionKind, number>;

const KINDS: RetentionKind[] = [
  'sources',
  'bodies',
  'messages',
  'outbound',
  'dead_letters',
  'webhook_log',
  'send_log',
  'orphans',
];

function emptyReport(): RetentionReport {
  return Object.fromEntries(KINDS.map((k) => [k, 0])) as RetentionReport;
}

/** Dead letters live in one instance's spool: outbound deletes them (handed in by main.ts). */
export type DeadLetterDropper = (letter: DueDeadLetter) => Promise<boolean>;

export interface RetentionDeps {
  store: Store;
  logger: Logger;
  dropDeadLetter: DeadLetterDropper;
  options?: Partial<RetentionOptions>;
  clock?: Clock;
}

const DAY_MS = 86_400_000;
const JOB = 'retention';

/**
 * Deletes what each tenant's retention says is due, in the background, on one instance at a
 * time (the `retention` job lease): per tenant and kind, small batches oldest first along the age
 * indexes, until a batch comes back short; then the orphan sweep of the source backends. Mail
 * still waiting is never touched: a message with an unclaimed delivery younger than the floor,
 * an outgoing message not yet sent or given up. A run reports what it removed in one log line
 * and in `mailroom_retention_deleted_total{kind}`.
 */
export class RetentionJob {
  readonly options: RetentionOptions;
  private readonly owner = `retention-${randomUUID()}`;
  private readonly clock: Clock;
  private timer: unknown;
  private running: Promise<RetentionReport | null> | undefined;
  private stopped = false;

  constructor(private readonly deps: RetentionDeps) {
    this.options = { ...DEFAULT_RETENTION_OPTIONS, ...deps.options };
    this.clock = deps.clock ?? systemClock;
  }

  start(): void {
    this.stopped = false;
    this.schedule(Math.min(this.options.intervalMs, 60_000));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => {
      this.runOnce()
        .catch((err: unknown) =>
          this.deps.logger.warn({ err }, 'retention run failed; tried again at the next interval'),
        )
        .finally(() => this.schedule(this.options.intervalMs));
    }, ms);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    await this.deps.store.lifecycle.releaseJob(JOB, this.owner).catch(() => undefined);
  }

  /** One run, unless another instance holds the job (null then). Runs of this instance join. */
  runOnce(): Promise<RetentionReport | null> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async hold(): Promise<boolean> {
    return this.deps.store.lifecycle.holdJob(JOB, this.owner, this.options.leaseTtlMs);
  }

  private async run(): Promise<RetentionReport | null> {
    const { store, logger } = this.deps;
    if (!(await this.hold())) return null;
    const startedAt = this.clock.now();
    const report = emptyReport();
    for (const { tenantId, policy } of await store.lifecycle.policies()) {
      if (this.stopped) break;
      const mine = emptyReport();
      const tenantStart = new Date(this.clock.now());
      try {
        await this.runTenant(tenantId, policy, mine);
      } finally {
        // What was deleted is recorded, also when the run stopped half way.
        for (const kind of KINDS) report[kind] += mine[kind];
        const removed = Object.fromEntries(KINDS.filter((k) => mine[k] > 0).map((k) => [k, mine[k]]));
        await store.lifecycle
          .recordRun(
            { tenantId, startedAt: tenantStart, finishedAt: new Date(this.clock.now()), removed },
            this.options.keepRuns,
          )
          .catch((err: unknown) => logger.warn({ err, tenantId }, 'retention run not recorded'));
      }
    }
    if (!this.stopped && store.sources.external.length > 0) {
      const swept = await store.sources.sweep(new Date(this.clock.now() - this.options.orphanGraceMs));
      this.count(report, 'orphans', swept.removed);
    }
    logger.info({ removed: report, ms: Math.round(this.clock.now() - startedAt) }, 'retention run done');
    return report;
  }

  private count(report: RetentionReport, kind: RetentionKind, n: number): void {
    if (n === 0) return;
    report[kind] += n;
    retentionDeleted.inc({ kind }, n);
  }

  /** Repeats `batch` until it comes back short, renewing the job lease between batches. */
  private async drain(kind: RetentionKind, report: RetentionReport, batch: () => Promise<number>): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const n = await batch();
      this.count(report, kind, n);
      if (n < this.options.batchSize) return;
      if (!(await this.hold())) throw new Error('the retention job lease was lost; another instance carries on');
    }
  }

  private async runTenant(tenantId: string, policy: RetentionPolicy, report: RetentionReport): Promise<void> {
    const { store, logger } = this.deps;
    const now = this.clock.now();
    const cutoff = (days: number): Date => new Date(now - days * DAY_MS);
    const floor = cutoff(this.options.waitingFloorDays);
    const limit = this.options.batchSize;
    const removeSources = async (removed: RemovedSource[]): Promise<void> => {
      for (const kind of ['directory', 's3'] as const) {
        const refs = removed.filter((r) => r.sourceStore === kind);
        // The rows no longer name them; a failure here leaves orphans for the sweeper.
        await store.sources
          .remove(kind, refs)
          .catch((err: unknown) => logger.warn({ err, tenantId }, 'sources left for the sweeper'));
      }
    };
    if (policy.messageDays !== null) {
      const at = cutoff(policy.messageDays);
      await this.drain('messages', report, async () => {
        const removed = await store.lifecycle.deleteMessages(tenantId, at, floor, limit);
        await removeSources(removed);
        return removed.length;
      });
    }
    if (policy.rawSourceDays !== null) {
      const at = cutoff(policy.rawSourceDays);
      await this.drain('sources', report, async () => {
        const removed = await store.transaction((tx) => tx.lifecycle.stripSources(tenantId, at, floor, limit));
        await removeSources(removed);
        return removed.length;
      });
    }
    if (policy.messageBodyDays !== null) {
      const at = cutoff(policy.messageBodyDays);
      await this.drain('bodies', report, () => store.lifecycle.stripBodies(tenantId, at, floor, limit));
    }
    if (policy.outboundDays !== null) {
      const at = cutoff(policy.outboundDays);
      await this.drain('outbound', report, () => store.lifecycle.deleteOutbound(tenantId, at, limit));
      await this.drain('dead_letters', report, async () => {
        const due = await store.lifecycle.dueDeadLetters(tenantId, at, limit);
        const dropped: string[] = [];
        for (const letter of due) if (await this.deps.dropDeadLetter(letter)) dropped.push(letter.id);
        await store.lifecycle.deleteOutboundRows(tenantId, dropped);
        // A dead letter whose instance could not drop it now is tried at the next run.
        return dropped.length === due.length ? due.length : Math.min(dropped.length, limit - 1);
      });
    }
    if (policy.logDays !== null) {
      const at = cutoff(policy.logDays);
      await this.drain('webhook_log', report, () => store.lifecycle.deleteWebhookLog(tenantId, at, limit));
      await this.drain('send_log', report, () => store.lifecycle.deleteSendLog(tenantId, at, new Date(now), limit));
    }
  }
}
