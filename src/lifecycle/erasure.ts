import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Actor } from '../shared/actor.js';
import { MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { ErasureRow } from '../store/erasure-repository.js';
import type { Store } from '../store/store.js';
import { addressArg } from './export.js';

/** What erasure needs of the outbound side (handed in by main.ts: lifecycle never imports outbound). */
export interface OutboundEraser {
  /** Takes a message waiting to be sent out of its queue (it becomes a dead letter); false while it is on its way. */
  cancel(target: { tenantId: string; destinationId: string; id: string }): Promise<boolean>;
  /** Deletes a dead letter's spool file; false when its instance has not done it yet. */
  deleteDeadLetter(target: { tenantId: string; destinationId: string; id: string }): Promise<boolean>;
  /** Deletes the spool's recycled files (they hold sent messages' bytes); answers how many. */
  forgetRecycledFiles(): Promise<number>;
}

export interface ErasureInput {
  address: string;
  /** Only what arrived (inbound) or was created (outbound) from this time on. */
  since?: string | undefined;
  /** … and before this time. */
  until?: string | undefined;
}

export interface ErasureReceipt {
  id: string;
  tenantId: string;
  since: string | null;
  until: string | null;
  counts: Record<string, number>;
  createdAt: string;
  /** Null while the erasure is not complete (repeat the request to carry it on). */
  finishedAt: string | null;
  /** Who asked (from the audit log's `erasure.requested`); null once that entry is gone. */
  requestedBy: { kind: Actor['kind']; tokenId: string | null; name: string } | null;
}

/** [200] messages deleted per statement. */
const BATCH = 200;

export function receiptOf(row: ErasureRow, by: Actor | null = null): ErasureReceipt {
  return {
    id: row.id,
    tenantId: row.tenantId,
    since: row.since?.toISOString() ?? null,
    until: row.until?.toISOString() ?? null,
    counts: row.counts,
    createdAt: row.createdAt.toISOString(),
    finishedAt: row.finishedAt?.toISOString() ?? null,
    requestedBy: by && { kind: by.kind, tokenId: by.kind === 'token' ? by.tokenId : null, name: by.name },
  };
}

function hashOf(salt: string, address: string): string {
  return createHash('sha256').update(salt).update('\u0000').update(address).digest('hex');
}

function dateOf(value: string | undefined, field: string): Date | null {
  if (value === undefined) return null;
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) {
    throw new MailroomError('VALIDATION_FAILED', `${field} must be an ISO 8601 date-time`, { field });
  }
  return at;
}

/**
 * Erasure on request: every inbound message from or to an address (its source in whatever
 * backend, its deliveries and webhook rows), the outgoing mail to it (waiting mail cancelled
 * first, dead letters' spool files deleted; the receipt's `spoolFiles` counts those, the tenant's
 * own), the alerts that quote it and the spool's recycled files (uncounted: see `run`); the trace events of what it deleted, and the address wherever the remaining trace
 * events and audit entries quote it (replaced by `[erased]`). Every step is idempotent and the
 * counts are saved as it goes, so a run cut short (a crash) is completed by repeating the
 * request: the same address and range find the same unfinished receipt, which never holds the
 * address, only a salted hash of it. Repeating a finished one erases again, under a new receipt,
 * what matches now (mail that arrived since). Each request and each run is audited (the erasure
 * id and counts, never the address).
 */
export class ErasureService {
  constructor(
    private readonly store: Store,
    private readonly outbound: OutboundEraser,
    private readonly logger: Logger,
  ) {}

  async erase(tenantId: string, input: ErasureInput): Promise<ErasureReceipt> {
    const address = addressArg(input.address);
    const since = dateOf(input.since, 'since');
    const until = dateOf(input.until, 'until');
    const same = (a: Date | null, b: Date | null): boolean => (a?.getTime() ?? null) === (b?.getTime() ?? null);
    if (since !== null && until !== null && until.getTime() <= since.getTime()) {
      throw new MailroomError('VALIDATION_FAILED', 'until must be later than since', { field: 'until' });
    }
    // Only an unfinished erasure is carried on; a finished one stays the record of what it did.
    const known = (await this.store.erasures.list(tenantId)).find(
      (e) =>
        e.finishedAt === null &&
        e.addressHash === hashOf(e.salt, address) &&
        same(e.since, since) &&
        same(e.until, until),
    );
    const salt = randomBytes(16).toString('hex');
    const row =
      known ??
      (await this.store.erasures.insert({
        id: randomUUID(),
        tenantId,
        addressHash: hashOf(salt, address),
        salt,
        since,
        until,
      }));
    const log = this.logger.child({ tenantId, erasureId: row.id });
    const audit = (action: string, detail: Record<string, unknown>): Promise<void> =>
      this.store.audit.record({ tenantId, action, targetKind: 'erasure', targetId: row.id, detail });
    if (!known) {
      await audit('erasure.requested', {
        since: row.since?.toISOString() ?? null,
        until: row.until?.toISOString() ?? null,
      });
    }
    log.info({ resumed: known !== undefined }, 'erasure started');
    await this.run(row, address, log);
    const done = (await this.store.erasures.get(tenantId, row.id)) as ErasureRow;
    await audit(done.finishedAt !== null ? 'erasure.finished' : 'erasure.unfinished', {
      resumed: known !== undefined,
      counts: done.counts,
    });
    if (done.finishedAt !== null) log.info({ counts: done.counts }, 'erasure finished');
    return receiptOf(done, await this.store.audit.actorOf(tenantId, 'erasure.requested', row.id));
  }

  /** The tenant's receipts, newest first (at most `limit`). */
  async list(tenantId: string, limit: number): Promise<ErasureReceipt[]> {
    const rows = (await this.store.erasures.list(tenantId)).reverse().slice(0, limit);
    return Promise.all(
      rows.map(async (row) => receiptOf(row, await this.store.audit.actorOf(tenantId, 'erasure.requested', row.id))),
    );
  }

  async get(tenantId: string, id: string): Promise<ErasureReceipt> {
    const row = await this.store.erasures.get(tenantId, id);
    if (!row) throw new MailroomError('ERASURE_NOT_FOUND', `erasure ${id} does not exist in this tenant`);
    return receiptOf(row, await this.store.audit.actorOf(tenantId, 'erasure.requested', id));
  }

  /**
   * Deletes the sources the erasure listed (outside the database; their rows are gone) and takes
   * them off the list, counted. False when a backend could not delete them now (they stay listed,
   * and the sweeper removes them as orphans meanwhile).
   */
  private async removeListedSources(row: ErasureRow, log: Logger): Promise<boolean> {
    const { store } = this;
    for (;;) {
      const listed = await store.erasures.listedSources(row.id, BATCH);
      if (listed.length === 0) return true;
      for (const kind of ['directory', 's3'] as const) {
        const refs = listed.filter((r) => r.sourceStore === kind);
        if (refs.length === 0) continue;
        try {
          await store.sources.remove(kind, refs);
        } catch (err) {
          log.warn({ err, backend: kind }, 'erasure could not delete sources now; repeat the request to carry on');
          return false;
        }
      }
      await store.transaction(async (tx) => {
        await tx.erasures.forgetSources(
          row.id,
          listed.map((r) => r.messageId),
        );
        await tx.erasures.addCounts(row.id, { sources: listed.length });
      });
      if (listed.length < BATCH) return true;
    }
  }

  private async run(row: ErasureRow, address: string, log: Logger): Promise<void> {
    const { store } = this;
    const { id, tenantId, since, until } = row;
    let pending = false;
    // Outgoing mail first: waiting mail is cancelled (a dead letter), then its file and row go.
    for (;;) {
      const found = await store.erasures.outboundTo(tenantId, address, since, until, BATCH);
      const removable: string[] = [];
      let spoolFiles = 0;
      for (const o of found) {
        const target = { tenantId, destinationId: o.destinationId, id: o.id };
        if (o.status === 'queued' || o.status === 'deferred') {
          if (!(await this.outbound.cancel(target))) continue;
        }
        if (o.status === 'sending') continue;
        if (o.deadLettered || o.status === 'queued' || o.status === 'deferred') {
          if (!(await this.outbound.deleteDeadLetter(target))) continue;
          spoolFiles += 1;
        }
        removable.push(o.id);
      }
      const outbound = await store.transaction(async (tx) => {
        const deleted = await tx.erasures.deleteOutbound(tenantId, removable);
        await tx.erasures.addCounts(id, { outbound: deleted, spoolFiles });
        return deleted;
      });
      if (outbound < found.length) pending = found.length > 0;
      if (found.length < BATCH || outbound === 0) break;
    }
    // Inbound messages: the rows (cascading to deliveries, webhook rows, PostgreSQL sources) go
    // in one transaction with their counts and the list of their sources elsewhere, then those
    // sources go and leave the list. A crash between leaves them listed: deleted first next time.
    let sourcesLeft = !(await this.removeListedSources(row, log));
    for (;;) {
      const removed = await store.transaction(async (tx) => {
        const batch = await tx.erasures.deleteMessages(id, tenantId, address, since, until, BATCH);
        await tx.erasures.addCounts(id, {
          messages: batch.removed.length,
          sources: batch.removed.filter((r) => r.sourceStore === 'postgres').length,
          deliveries: batch.deliveries,
          webhookRows: batch.webhookRows,
        });
        return batch.removed.length;
      });
      if (!sourcesLeft) sourcesLeft = !(await this.removeListedSources(row, log));
      if (removed < BATCH) break;
    }
    const alerts = await store.erasures.deleteAlerts(tenantId, address);
    await store.erasures.addCounts(id, { alerts });
    // The spool's recycled files (free/) may still hold the bytes of any delivered message, this
    // address's included, so they go too; but they are every tenant's (a file is not told by
    // whose message it held last), so their number is the operator's, in the log, never in this
    // tenant's receipt: an outside review read other tenants' traffic from it (issue 24).
    const recycled = await this.outbound.forgetRecycledFiles();
    log.info({ recycledSpoolFiles: recycled }, "erasure wiped the spool's recycled files");
    const scrubbed = await store.erasures.scrubDetails(tenantId, address);
    await store.erasures.addCounts(id, { scrubbedEntries: scrubbed });
    if (pending || sourcesLeft) {
      log.warn('erasure not complete (mail on its way, or a source store away); repeat the request to carry it on');
      return;
    }
    await store.erasures.finish(id, new Date());
  }
}
