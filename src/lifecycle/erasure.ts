import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { ErasureRow } from '../store/lifecycle-repositories.js';
import type { Store } from '../store/store.js';

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
}

/** [200] messages deleted per statement. */
const BATCH = 200;

export function receiptOf(row: ErasureRow): ErasureReceipt {
  return {
    id: row.id,
    tenantId: row.tenantId,
    since: row.since?.toISOString() ?? null,
    until: row.until?.toISOString() ?? null,
    counts: row.counts,
    createdAt: row.createdAt.toISOString(),
    finishedAt: row.finishedAt?.toISOString() ?? null,
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
 * own), the alerts that quote it and the spool's recycled files (uncounted: see `run`). Every step is idempotent and the counts are saved as it goes, so a run cut short (a
 * crash) is completed by repeating the request: the same address and range find the same
 * receipt, which never holds the address, only a salted hash of it.
 */
export class ErasureService {
  constructor(
    private readonly store: Store,
    private readonly outbound: OutboundEraser,
    private readonly logger: Logger,
  ) {}

  async erase(tenantId: string, input: ErasureInput): Promise<ErasureReceipt> {
    const address = input.address.trim().toLowerCase();
    if (!/^[^\s@]+@[^\s@]+$/.test(address)) {
      throw new MailroomError('VALIDATION_FAILED', 'address must be an e-mail address', { field: 'address' });
    }
    const since = dateOf(input.since, 'since');
    const until = dateOf(input.until, 'until');
    const same = (a: Date | null, b: Date | null): boolean => (a?.getTime() ?? null) === (b?.getTime() ?? null);
    const known = (await this.store.erasures.list(tenantId)).find(
      (e) => e.addressHash === hashOf(e.salt, address) && same(e.since, since) && same(e.until, until),
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
    if (row.finishedAt === null) {
      log.info({ resumed: known !== undefined }, 'erasure started');
      await this.run(row, address, log);
    }
    const done = (await this.store.erasures.get(tenantId, row.id)) as ErasureRow;
    if (done.finishedAt !== null) log.info({ counts: done.counts }, 'erasure finished');
    return receiptOf(done);
  }

  async get(tenantId: string, id: string): Promise<ErasureReceipt> {
    const row = await this.store.erasures.get(tenantId, id);
    if (!row) throw new MailroomError('ERASURE_NOT_FOUND', `erasure ${id} does not exist in this tenant`);
    return receiptOf(row);
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
      const outbound = await store.erasures.deleteOutbound(tenantId, removable);
      await store.erasures.addCounts(id, { outbound, spoolFiles });
      if (outbound < found.length) pending = found.length > 0;
      if (found.length < BATCH || outbound === 0) break;
    }
    // Inbound messages: the rows (cascading to deliveries, webhook rows, PostgreSQL sources)
    // commit first, then the sources elsewhere go (a crash between leaves orphans, swept).
    for (;;) {
      const batch = await store.erasures.deleteMessages(tenantId, address, since, until, BATCH);
      let sources = batch.removed.filter((r) => r.sourceStore !== null).length;
      for (const kind of ['directory', 's3'] as const) {
        const refs = batch.removed.filter((r) => r.sourceStore === kind);
        try {
          await store.sources.remove(kind, refs);
        } catch (err) {
          // The rows are gone: the sweeper removes these orphans, but the erasure is not done yet.
          log.warn({ err, backend: kind }, 'erasure could not delete sources now; the sweeper will');
          sources -= refs.length;
          pending = true;
        }
      }
      await store.erasures.addCounts(id, {
        messages: batch.removed.length,
        sources,
        deliveries: batch.deliveries,
        webhookRows: batch.webhookRows,
      });
      if (batch.removed.length < BATCH) break;
    }
    const alerts = await store.erasures.deleteAlerts(tenantId, address);
    await store.erasures.addCounts(id, { alerts });
    // The spool's recycled files (free/) may still hold the bytes of any delivered message, this
    // address's included, so they go too; but they are every tenant's (a file is not told by
    // whose message it held last), so their number is the operator's, in the log, never in this
    // tenant's receipt: an outside review read other tenants' traffic from it (issue 24).
    const recycled = await this.outbound.forgetRecycledFiles();
    log.info({ recycledSpoolFiles: recycled }, "erasure wiped the spool's recycled files");
    if (pending) {
      log.warn('erasure not complete (mail on its way, or a source store away); repeat the request to carry it on');
      return;
    }
    await store.erasures.finish(id, new Date());
  }
}
