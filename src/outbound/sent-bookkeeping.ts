import type { Logger } from '../shared/logger.js';
import type { SentRecord } from '../store/outbound-messages.js';
import { queuedRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { Spool, SpoolHeader, SpoolItem } from './spool.js';

/** The reply recorded for a delivery found marked in the spool (its record had not been made). */
export const SENT_FOLDER_REPLY = '250 (delivered; recorded later from the spool’s sent log)';

export interface SentBookkeepingDeps {
  spool: Spool;
  store: Store;
  log: Logger;
  serverId: string;
  /** Records a delivery (status `sent` + send log); group-committed across accounts, resolves once durable. */
  recordSent: (record: SentRecord) => Promise<void>;
  /** A delivered message could be neither moved out of the queue nor recorded: the queue lists its folder again. */
  relist: () => void;
}

/**
 * What happens to one account's messages after the server's 250: each is marked delivered in the
 * spool's sent log at once, is recorded in the database, then its file is recycled; deliveries
 * left marked (the engine stopped, or a record failed) are recorded at the next listing.
 */
export class SentBookkeeping {
  /**
   * The last delivery not marked in the spool (the mark failed), until its database record is
   * written: the next message's final dot waits for it.
   */
  private marking: Promise<unknown> | null = null;
  /** A marked delivery waits for its database record (at start, or it failed once): recorded at the next listing. */
  private sentToRecord = true;
  /** Records being written and the file removals that follow them (awaited by `settled`). */
  private readonly settling = new Set<Promise<void>>();
  /** Files of delivered messages not yet removed: a listing of the folder must not queue them again. */
  private readonly finishing = new Set<string>();

  constructor(private readonly deps: SentBookkeepingDeps) {}

  /** What the next message's final dot waits for: the last delivery being marked, if it is not yet. */
  get gate(): Promise<unknown> | undefined {
    return this.marking ?? undefined;
  }

  /** Whether a file of this name is a delivered message still being finished (never to be queued again). */
  isFinishing(name: string): boolean {
    return this.finishing.has(name);
  }

  /** Resolves once every record and file removal under way is done. */
  async settled(): Promise<void> {
    await Promise.all([...this.settling]);
  }

  /**
   * After the server's 250: the delivery is marked in the spool's sent log (one small write, before
   * anything else happens on this account), and recorded in the database (group-committed with the
   * deliveries of a few milliseconds, one synchronous commit), then the file is recycled. The
   * queue goes on at once, so at most one delivered message is ever unmarked (one duplicate at
   * most when the engine is killed). Should the mark fail, the next message's final dot waits for
   * the database record instead; should both fail, the file stays and is sent again (a duplicate
   * rather than a loss).
   */
  track(item: SpoolItem, record: SentRecord): void {
    const { log, spool } = this.deps;
    const recording = this.deps.recordSent(record);
    recording.catch(() => undefined); // reported below
    this.finishing.add(item.name);
    let marked = true;
    try {
      spool.markSent(item);
    } catch (err) {
      log.warn({ err, outboundId: item.id }, 'could not mark a delivered message in the spool');
      marked = false;
    }
    const marking = marked ? null : recording.catch(() => undefined);
    this.marking = marking;
    let relist = false;
    const settled = recording
      .then(
        () => true,
        (err: unknown) => err,
      )
      .then(async (outcome) => {
        if (outcome !== true) {
          if (marked) {
            // Delivered and marked: recorded from the sent log at the next listing.
            log.error({ err: outcome, outboundId: item.id }, 'recording a delivered message failed; will retry');
            this.sentToRecord = true;
            return;
          }
          log.error(
            { err: outcome, outboundId: item.id },
            'recording a delivered message failed; it stays in the spool and will be sent again',
          );
          relist = true;
          return;
        }
        await spool.remove(item);
      })
      .catch((err: unknown) =>
        log.error(
          { err, outboundId: item.id },
          'making a delivery durable or removing its spool file failed; the file goes at the next listing, unsent',
        ),
      )
      .finally(() => {
        this.settling.delete(settled);
        this.finishing.delete(item.name);
        if (this.marking === marking) this.marking = null;
        if (relist) this.deps.relist();
      });
    this.settling.add(settled);
  }

  /**
   * Records the deliveries found marked in the spool (after their 250 the engine stopped, or the
   * record failed, before the database had them), when there may be some: status `sent` and the
   * send log, then the files are recycled. Files still being finished here are left alone.
   */
  async recordLeftovers(): Promise<void> {
    if (!this.sentToRecord) return;
    this.sentToRecord = false;
    try {
      await this.recordEachSent();
    } catch (err) {
      this.sentToRecord = true; // tried again at the next listing
      throw err;
    }
  }

  private async recordEachSent(): Promise<void> {
    const { log, spool, store } = this.deps;
    for (const item of await spool.listSent(this.deps.serverId)) {
      if (this.finishing.has(item.name)) continue;
      const { sentAt } = item;
      const row = await store.outbound.byId(item.id);
      if (row?.status !== 'sent') {
        if (!row) {
          // No status row (the engine stopped between spooling and recording): rebuilt from the file.
          let header: SpoolHeader;
          try {
            header = (await spool.read(item)).header;
          } catch (err) {
            // spool.read moved the file to corrupt/: the message was delivered (250), nothing is sent again.
            log.warn(
              { err, outboundId: item.id, file: item.name, alert: 'spool_corrupt' },
              'a delivered message left in the spool has no status row and its file is damaged; moved to corrupt/ ' +
                '(it was delivered, nothing is sent again; check the disk under the spool folder)',
            );
            continue;
          }
          await store.outbound.insertMissing(statusRowFromHeader(header));
        }
        await this.deps.recordSent({
          id: item.id,
          sentAt,
          reply: SENT_FOLDER_REPLY,
          responseCode: 250,
          attempts: (row?.attempts ?? 0) + 1,
          firstAttemptAt: row?.firstAttemptAt ?? sentAt,
        });
      }
      await spool.remove(item);
    }
  }
}

/** A status row rebuilt from a spool header (the engine stopped between spooling and recording). */
export function statusRowFromHeader(h: SpoolHeader): Parameters<Store['outbound']['insert']>[0] {
  return queuedRow({
    id: h.id,
    tenantId: h.tenantId,
    destinationId: h.destinationId,
    serverId: h.accountId,
    messageIdHeader: h.messageId,
    conversationId: null,
    subject: '',
    recipients: h.envelope.to,
    instanceId: h.instanceId,
  });
}
