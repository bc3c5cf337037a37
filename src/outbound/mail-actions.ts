import type { Clock } from '../shared/clock.js';
import { actorDetail } from '../store/trace-events.js';
import { isMailroomError, MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { OutboundAction, OutboundRequestRecord } from '../store/outbound-requests.js';
import type { OutboundMessageRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { AccountQueue } from './account-queue.js';
import type { Spool } from './spool.js';
import { isUuid } from '../shared/validation.js';

/** Why a cancelled message was not sent: its row's last reply and its dead letter's. */
export const CANCELLED_REPLY = 'not sent: cancelled through the API';

/** Requests of a tenant listed at most. */
const REQUESTS_LISTED = 500;
/** Done requests are kept this long (their outcome can be looked up), ms. */
const REQUEST_KEEP_MS = 7 * 24 * 3_600_000;
/** Done requests are pruned at most this often, ms. */
const PRUNE_EVERY_MS = 3_600_000;

/**
 * What became of an action: carried out here (`done`, with the message's row afterwards), or
 * left for the instance whose disk holds the message's spool file (`requested`).
 */
export type ActionOutcome =
  | { state: 'done'; row: OutboundMessageRow }
  | { state: 'requested'; requestId: string; instanceId: string; holderRunning: boolean };

export interface MailActionsDeps {
  store: Store;
  spool: Spool;
  clock: Clock;
  logger: Logger;
  instanceId: string;
  /** This process's queue of a server, if it has one. */
  queueOf(serverId: string): AccountQueue | undefined;
  /** Whether this process delivers (the engine), as opposed to a tool over the same spool (the CLI). */
  delivering(): boolean;
}

/** Which message an action is about, as the caller named it. */
export interface ActionTarget {
  tenantId: string;
  id: string;
  serverId?: string;
  destinationId?: string;
}

/**
 * Outgoing mail managed from any instance: dead letters listed from the database (every
 * instance's, deleted servers' too), and a message cancelled or a dead letter re-queued or
 * deleted by the instance whose spool holds its file. The instance that is asked does it at once
 * when the file is its own; otherwise it leaves a request (`outbound_requests`) that the holder
 * carries out at its next look (every few seconds, or when it starts again).
 */
export class MailActions {
  private prunedAt = 0;
  /** The look at pending requests under way, if any. */
  private carrying: Promise<number> | undefined;

  constructor(private readonly deps: MailActionsDeps) {}

  /** A request left for another instance (of a message of this tenant), and what became of it. */
  async request(tenantId: string, requestId: string): Promise<OutboundRequestRecord> {
    const found = await this.deps.store.outboundRequests.get(tenantId, requestId);
    if (!found) throw new MailroomError('OUTBOUND_NOT_FOUND', `no outbound request ${requestId} for this tenant`);
    return found;
  }

  /**
   * A tenant's requests (of one server's messages, or of all), newest first: those still waiting
   * for their instance, or all that are kept (7 days).
   */
  requests(tenantId: string, options: { waitingOnly: boolean; serverId?: string }): Promise<OutboundRequestRecord[]> {
    return this.deps.store.outboundRequests.list(tenantId, { ...options, limit: REQUESTS_LISTED });
  }

  /**
   * Withdraws a request its instance has not taken up yet (that instance may never come back):
   * it is never carried out. Refused while a running instance carries it out, or when it is settled.
   */
  async withdraw(tenantId: string, requestId: string): Promise<OutboundRequestRecord> {
    const { store, logger } = this.deps;
    const result = await store.outboundRequests.withdraw(tenantId, requestId);
    if (result === 'absent') {
      throw new MailroomError('OUTBOUND_NOT_FOUND', `no outbound request ${requestId} for this tenant`);
    }
    const record = await this.request(tenantId, requestId);
    if (result !== 'withdrawn') {
      throw new MailroomError(
        'OUTBOUND_REQUEST_NOT_WAITING',
        result === 'claimed'
          ? `request ${requestId} is being carried out by instance ${record.instanceId} now: too late to withdraw it`
          : `request ${requestId} is settled already (${record.outcome ?? 'done'})`,
        { details: { instanceId: record.instanceId, outcome: record.outcome } },
      );
    }
    logger.info(
      { tenantId, requestId, outboundId: record.outboundId, action: record.action, holder: record.instanceId },
      'outbound request withdrawn',
    );
    return record;
  }

  /** Dead letters on record for a tenant: of one server, or of all (deleted ones too). */
  deadLetters(tenantId: string, serverId?: string): Promise<OutboundMessageRow[]> {
    return this.deps.store.outbound.listDeadLetters(tenantId, serverId);
  }

  /** Puts a dead letter back at the end of its server's queue (attempts start again). */
  requeue(target: ActionTarget): Promise<ActionOutcome> {
    return this.act(target, 'requeue');
  }

  /** Deletes a dead letter for good (its status row stays `failed`). */
  deleteDead(target: ActionTarget): Promise<ActionOutcome> {
    return this.act(target, 'delete');
  }

  /**
   * Takes a message that waits to be sent (queued or deferred) out of its queue, for good unless
   * re-queued: it becomes a dead letter, its status `failed`. Too late once it is on its way.
   */
  cancel(target: ActionTarget): Promise<ActionOutcome> {
    return this.act(target, 'cancel');
  }

  /**
   * Carries out the requests other processes left for this instance, oldest first; returns how
   * many were settled (a cancellation of a message on its way stays for the next look).
   */
  carryOutRequests(): Promise<number> {
    // One look at a time (the engine's timer and a caller may ask together): a second joins the first.
    this.carrying ??= this.carryOutPending().finally(() => {
      this.carrying = undefined;
    });
    return this.carrying;
  }

  private async carryOutPending(): Promise<number> {
    const { store, logger, instanceId, clock } = this.deps;
    const pending = await store.outboundRequests.pending(instanceId);
    let settled = 0;
    for (const request of pending) {
      // Claimed first: a request withdrawn meanwhile is not carried out (nor one claimed is withdrawn).
      if (!(await store.outboundRequests.claim(request.id))) continue;
      const row = await store.outbound.byId(request.outboundId);
      let outcome = 'done';
      try {
        if (!row)
          throw new MailroomError('OUTBOUND_NOT_FOUND', `outgoing message ${request.outboundId} does not exist`);
        checkAction(request.action, row);
        await this.carryOut(request.action, row);
      } catch (err) {
        // A cancellation that meets the message on its way waits for the attempt's end: the next look decides.
        if (isMailroomError(err, 'OUTBOUND_NOT_WAITING') && err.details?.['status'] === 'sending') {
          await store.outboundRequests.release(request.id);
          continue;
        }
        outcome = (err as Error).message;
      }
      await store.outboundRequests.finish(request.id, outcome);
      settled += 1;
      logger.info(
        { outboundId: request.outboundId, action: request.action, requestId: request.id, outcome },
        'outbound request carried out',
      );
    }
    const now = clock.now();
    if (now - this.prunedAt >= PRUNE_EVERY_MS) {
      this.prunedAt = now;
      await store.outboundRequests.prune(new Date(now - REQUEST_KEEP_MS));
    }
    return settled;
  }

  /**
   * Makes the rows' dead-letter marks what this instance's spool holds (at start): dead letters
   * spooled before the marks existed, or re-queued or deleted by hand in the folder.
   */
  async syncDeadLetters(): Promise<void> {
    const ids = (await this.deps.spool.listAllDead()).map((i) => i.id).filter(isUuid);
    await this.deps.store.outbound.syncDeadLetters(this.deps.instanceId, ids, new Date(this.deps.clock.now()));
  }

  private async act(target: ActionTarget, action: OutboundAction): Promise<ActionOutcome> {
    const { store, instanceId, logger } = this.deps;
    const row = await store.outbound.get(target.tenantId, target.id);
    if (
      !row ||
      (target.serverId !== undefined && row.serverId !== target.serverId) ||
      (target.destinationId !== undefined && row.destinationId !== target.destinationId)
    ) {
      throw new MailroomError(
        'OUTBOUND_NOT_FOUND',
        action === 'cancel'
          ? `outgoing message ${target.id} does not exist for this destination`
          : `no dead letter ${target.id} for this ${target.serverId !== undefined ? 'server' : 'tenant'}`,
      );
    }
    checkAction(action, row);
    // A message is cancelled here only by the process that delivers it (its queue must skip it);
    // a tool over the same spool (the CLI) leaves the engine a request.
    const here = row.instanceId === instanceId && (action !== 'cancel' || this.deps.delivering());
    if (here) {
      const after = await this.carryOut(action, row);
      // After the spool file moved (a file system change, no transaction to share): the action is
      // on record once it was carried out.
      await this.audit(action, row, { outcome: 'done', statusBefore: row.status, statusAfter: after.status });
      return { state: 'done', row: after };
    }
    const requestId = await store.outboundRequests.add(row.instanceId, row.id, action);
    await this.audit(action, row, { outcome: 'requested', requestId, holder: row.instanceId });
    // Whether the holder runs now (it announces itself while it does): within seconds, or at its next start.
    const holderRunning = (await store.leases.instances()).some((i) => i.instanceId === row.instanceId);
    logger.info(
      { tenantId: row.tenantId, outboundId: row.id, action, requestId, holder: row.instanceId, holderRunning },
      'outbound request left for the instance holding the spool file',
    );
    return { state: 'requested', requestId, instanceId: row.instanceId, holderRunning };
  }

  /** The audit log's entry of an action on an outgoing message (who: the current actor). */
  private async audit(action: OutboundAction, row: OutboundMessageRow, detail: Record<string, unknown>): Promise<void> {
    const names: Record<OutboundAction, string> = {
      requeue: 'dead-letter.requeued',
      delete: 'dead-letter.deleted',
      cancel: 'outbound.cancelled',
    };
    await this.deps.store.audit.record({
      tenantId: row.tenantId,
      action: names[action],
      targetKind: 'outbound',
      targetId: row.id,
      detail: { serverId: row.serverId, destinationId: row.destinationId, ...detail },
    });
  }

  /** The action, on this instance's own spool file; the row afterwards. */
  private async carryOut(action: OutboundAction, row: OutboundMessageRow): Promise<OutboundMessageRow> {
    const { store, spool } = this.deps;
    // Its file is gone (removed by hand from the spool folder): the row stops saying it is a dead letter.
    const notInSpool = async (): Promise<MailroomError> => {
      await store.outbound.update(row.id, { deadLetteredAt: null });
      return new MailroomError(
        'OUTBOUND_NOT_FOUND',
        `dead letter ${row.id} is no longer in the spool of instance ${row.instanceId} (its file was removed ` +
          'from the dead/ folder); it is no longer listed',
      );
    };
    if (action === 'requeue') {
      if (!(await store.servers.exists(row.serverId))) {
        throw new MailroomError(
          'SERVER_NOT_FOUND',
          `the e-mail server of dead letter ${row.id} was deleted: it can be deleted, not re-queued`,
        );
      }
      if (!(await spool.requeueDead(row.serverId, row.id))) throw await notInSpool();
      await store.transaction(async (tx) => {
        await tx.outbound.update(row.id, {
          status: 'queued',
          nextAttemptAt: null,
          firstAttemptAt: null,
          attempts: 0,
          deadLetteredAt: null,
        });
        await tx.trace.append([
          { tenantId: row.tenantId, messageId: row.id, type: 'requeued', detail: { ...actorDetail() } },
        ]);
      });
      this.deps.queueOf(row.serverId)?.refresh();
    } else if (action === 'delete') {
      // Gone already (removed by hand): deleted all the same.
      await spool.deleteDead(row.serverId, row.id);
      await store.transaction(async (tx) => {
        await tx.outbound.update(row.id, { deadLetteredAt: null });
        await tx.trace.append([
          { tenantId: row.tenantId, messageId: row.id, type: 'dead-letter-deleted', detail: { ...actorDetail() } },
        ]);
      });
    } else {
      const result = await this.cancelHere(row);
      if (result !== 'cancelled') {
        throw new MailroomError(
          'OUTBOUND_NOT_WAITING',
          result === 'sending'
            ? `outgoing message ${row.id} is on its way to the server now: too late to cancel it, unless ` +
                'this attempt fails (try again in a moment)'
            : `outgoing message ${row.id} is no longer in the queue (sent or given up meanwhile)`,
          { details: { status: result === 'sending' ? 'sending' : row.status } },
        );
      }
    }
    return (await store.outbound.byId(row.id)) ?? row;
  }

  /** Cancels through the server's queue; without one (no queue here for it), on the spool folder. */
  private async cancelHere(row: OutboundMessageRow): Promise<'cancelled' | 'sending' | 'absent'> {
    const queue = this.deps.queueOf(row.serverId);
    if (queue) return queue.cancel(row.id, CANCELLED_REPLY);
    const { spool, store, clock } = this.deps;
    const item = (await spool.list(row.serverId)).find((i) => i.id === row.id);
    if (!item) return 'absent';
    const now = new Date(clock.now());
    await spool.deadLetter(item, {
      reply: CANCELLED_REPLY,
      responseCode: null,
      attempts: row.attempts,
      firstAttemptAt: row.firstAttemptAt?.toISOString() ?? null,
      failedAt: now.toISOString(),
    });
    await store.outbound.failUnlessSent(row.id, CANCELLED_REPLY, now, { type: 'cancelled', detail: actorDetail() });
    return 'cancelled';
  }
}

/** Whether the row allows the action at all (before its file is looked for). */
function checkAction(action: OutboundAction, row: OutboundMessageRow): void {
  if (action === 'cancel') {
    if (row.status === 'queued' || row.status === 'deferred') return;
    throw new MailroomError(
      'OUTBOUND_NOT_WAITING',
      `outgoing message ${row.id} is ${row.status === 'sent' ? 'already sent' : `${row.status}, not waiting to be sent`}`,
      { details: { status: row.status } },
    );
  }
  if (row.deadLetteredAt === null) {
    throw new MailroomError('OUTBOUND_NOT_FOUND', `outgoing message ${row.id} is not a dead letter`, {
      details: { status: row.status },
    });
  }
}
