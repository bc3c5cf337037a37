import { randomUUID } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Store } from '../store/store.js';
import { queuedAtOf, seqTimeOf, type SpoolItem } from './spool.js';

export interface WaitingWarningDeps {
  clock: Clock;
  store: Store;
  /** Carries the account's tenantId and serverId. */
  log: Logger;
  tenantId: string;
  serverId: string;
  /** [14400000] warn about a message still queued after this long, ms (0 = never). */
  warnAfterMs: number;
  /** Why the queue waits (state and last reply), for the warning. */
  describe: () => { state: string; lastReply: string | null };
}

/**
 * Mail that has waited too long in one account's queue (issue 4: "a warning event after 4
 * hours"): once per message, a warn line (`event: 'outbound-waiting'`) and an alert row
 * (`kind: 'outbound_waiting'`). Time comes from the injected clock; a timer waits for the next
 * message due, so a held or paused queue warns too.
 */
export class WaitingWarning {
  private readonly warned = new Set<string>();
  private timer: unknown;
  private stopped = false;

  constructor(private readonly deps: WaitingWarningDeps) {}

  /** Looks at the queue (oldest first) and warns about each message past the age; sets the next timer. */
  check(pending: readonly SpoolItem[]): void {
    const { clock, warnAfterMs } = this.deps;
    clock.clearTimeout(this.timer);
    if (this.stopped || warnAfterMs <= 0) return;
    const now = clock.now();
    for (const item of pending) {
      const queuedAt = queuedAtOf(item);
      if (queuedAt === null || this.warned.has(item.id)) continue;
      const due = queuedAt + warnAfterMs;
      if (due > now) {
        // The queue is in the order of queuing: the rest are due later.
        this.timer = clock.setTimeout(() => this.check(pending), due - now);
        return;
      }
      this.warned.add(item.id);
      this.warn(item, now - queuedAt);
    }
  }

  /** The message left the queue (sent, dead-lettered, set aside). */
  forget(id: string): void {
    this.warned.delete(id);
  }

  stop(): void {
    this.stopped = true;
    this.deps.clock.clearTimeout(this.timer);
  }

  private warn(item: SpoolItem, waitedMs: number): void {
    const { state, lastReply } = this.deps.describe();
    const hours = Math.round((waitedMs / 3_600_000) * 10) / 10;
    this.deps.log.warn(
      { event: 'outbound-waiting', outboundId: item.id, waitedMs, queuedAt: seqTimeOf(item), state, lastReply },
      'outgoing message waiting longer than the warning age',
    );
    void this.deps.store.alerts
      .insert({
        id: randomUUID(),
        tenantId: this.deps.tenantId,
        serverId: this.deps.serverId,
        kind: 'outbound_waiting',
        message: `outgoing message ${item.id} has waited ${hours} h in the spool (queue ${state}, last reply: ${lastReply ?? 'none'})`,
        details: { outboundId: item.id, waitedMs, state },
      })
      .catch((err: unknown) => this.deps.log.error({ err, outboundId: item.id }, 'recording the waiting alert failed'));
  }
}
