import type { Clock } from '../shared/clock.js';
import { MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { Store } from '../store/store.js';
import type { AccountQueue } from './account-queue.js';
import type { MailActions } from './mail-actions.js';
import type { RetiredView } from './schemas.js';
import { SENT_FOLDER_REPLY } from './sent-bookkeeping.js';
import type { Spool } from './spool.js';

export interface RetirementDeps {
  store: Store;
  logger: Logger;
  spool: Spool;
  clock: Clock;
  /** This instance's id, as its spool and status rows name it. */
  instanceId: string;
  /** How this process announces itself as running (see `OutboundDeps.announce`). */
  announce?: { owner: string; ttlMs: number } | undefined;
  /** The outbound side's queues, by server id: the queue of a deleted server is stopped and removed. */
  queues: Map<string, AccountQueue>;
  actions: Pick<MailActions, 'syncDeadLetters'>;
}

function instanceRunning(instanceId: string, self: boolean): MailroomError {
  return new MailroomError(
    'INSTANCE_RUNNING',
    `instance ${instanceId} runs${self ? ' (it is this one)' : ''}: stop it first; an instance that runs ` +
      'delivers its own spool',
    { details: { instanceId } },
  );
}

/** Why the messages in the spool of a retired instance are not sent. */
const RETIRED_REPLY = 'not sent: the spool of its engine instance was given up (the instance was retired)';

/** Why a message spooled for a server that was deleted is not sent. */
const SERVER_DELETED_REPLY = 'not sent: its e-mail server was deleted';

/**
 * Mail that will not be sent because its spool was given up: of an instance retired by an
 * administrator (another one's, gone for good; or this one's, noticed when it starts or while it
 * runs), and of e-mail servers deleted with mail still waiting. What is given up becomes a dead
 * letter, kept and never sent.
 */
export class SpoolRetirement {
  private readonly spool: Spool;
  private readonly clock: Clock;
  private readonly queues: Map<string, AccountQueue>;
  private readonly actions: Pick<MailActions, 'syncDeadLetters'>;

  constructor(private readonly deps: RetirementDeps) {
    this.spool = deps.spool;
    this.clock = deps.clock;
    this.queues = deps.queues;
    this.actions = deps.actions;
  }

  /**
   * This instance was retired while it was away (its mail given up, see {@link retireInstance}):
   * the messages still in its spool are set aside as dead letters, unsent (their rows say failed),
   * where they are listed again and can be re-queued; its name is free again.
   */
  async setAsideRetiredSpool(): Promise<void> {
    const { store, logger, instanceId, announce } = this.deps;
    const retired = announce
      ? await store.retiredInstances.claim(instanceId, announce)
      : await store.retiredInstances.has(instanceId);
    if (!retired) return;
    const failedAt = new Date(this.clock.now()).toISOString();
    let setAside = 0;
    for (const accountId of await this.spool.accounts()) {
      for (const item of await this.spool.list(accountId)) {
        const row = await store.outbound.byId(item.id);
        if (row?.status === 'sent') {
          await this.spool.remove(item); // delivered, its file outlived the record (as the queue does)
          continue;
        }
        await this.spool.deadLetter(item, {
          reply: RETIRED_REPLY,
          responseCode: null,
          attempts: row?.attempts ?? 0,
          firstAttemptAt: row?.firstAttemptAt?.toISOString() ?? null,
          failedAt,
        });
        setAside += 1;
      }
    }
    await store.retiredInstances.forget(instanceId);
    logger.warn(
      { instanceId, messages: setAside, alert: 'retired_instance_started' },
      'this instance was retired while it was away: the mail in its spool is set aside as dead letters, not sent',
    );
  }

  /**
   * This instance was retired while it ran (an administrator took it for gone: its announcement
   * had lapsed, e.g. the database was out of its reach for a lease ttl). What the retirement gave
   * up (the messages whose rows it failed and that it has not sent in the seconds until it looks)
   * is set aside as dead letters, unsent, as at a start; messages accepted since are kept, and one
   * on its way to the server now is delivered. Its dead letters are listed again and its name is
   * free again. Looked at on every periodic tick.
   */
  async noticeRetirement(): Promise<void> {
    const { store, logger, instanceId } = this.deps;
    if (!(await store.retiredInstances.has(instanceId))) return;
    let setAside = 0;
    for (const [accountId, queue] of this.queues) {
      for (const item of await this.spool.list(accountId)) {
        if ((await store.outbound.byId(item.id))?.status !== 'failed') continue;
        if ((await queue.cancel(item.id, RETIRED_REPLY)) === 'cancelled') setAside += 1;
      }
    }
    await this.actions.syncDeadLetters();
    await store.retiredInstances.forget(instanceId);
    logger.warn(
      { instanceId, messages: setAside, alert: 'retired_instance_running' },
      'this instance was retired while it ran: the mail the retirement gave up is set aside as dead letters, not sent',
    );
  }

  /**
   * Gives up the spool of another instance that is gone for good (the machine and its disk): its
   * messages still waiting become failed, its dead letters are no longer listed, the requests
   * waiting for it are withdrawn. Refused for this instance and for one that runs. Should it start
   * again, it sets what its spool still holds aside as dead letters, unsent.
   */
  async retireInstance(instanceId: string): Promise<RetiredView> {
    const { store, logger } = this.deps;
    // Checked again under the lock that a starting instance takes (an instance may start meanwhile).
    if (instanceId === this.deps.instanceId) throw instanceRunning(instanceId, true);
    const retired = await store.retiredInstances.retire(instanceId, RETIRED_REPLY);
    if (!retired) throw instanceRunning(instanceId, false);
    logger.warn({ ...retired, alert: 'instance_retired' }, 'instance retired: the mail in its spool is given up');
    return { ...retired, retiredAt: retired.retiredAt.toISOString() };
  }

  /**
   * Queues of servers that were deleted (their waiting mail given up by the administrator, see
   * `ServerService.delete`): the queue stops, and each file still in its folder becomes a dead
   * letter on this instance's disk (kept, never sent), its status `failed` with why. A folder
   * is retired only once the database confirms its server is gone.
   */
  async retireDeleted(present: ReadonlySet<string>): Promise<void> {
    const { store, logger } = this.deps;
    const gone = new Set<string>();
    for (const id of this.queues.keys()) if (!present.has(id)) gone.add(id);
    for (const id of await this.spool.accounts()) if (!present.has(id)) gone.add(id);
    for (const serverId of gone) {
      if (await store.servers.exists(serverId)) continue; // created after the listing
      const queue = this.queues.get(serverId);
      this.queues.delete(serverId);
      await queue?.stop();
      const now = new Date(this.clock.now()).toISOString();
      const items = await this.spool.list(serverId);
      for (const item of items) {
        await this.spool.deadLetter(item, {
          reply: SERVER_DELETED_REPLY,
          responseCode: null,
          attempts: 0,
          firstAttemptAt: null,
          failedAt: now,
        });
        await store.outbound.failUnlessSent(item.id, SERVER_DELETED_REPLY, new Date(now));
      }
      // Delivered before the deletion but not recorded yet: recorded as sent, the file recycled.
      for (const item of await this.spool.listSent(serverId)) {
        const at = new Date(this.clock.now());
        const row = await store.outbound.byId(item.id);
        const attempts = (row?.attempts ?? 0) + 1;
        const firstAttemptAt = row?.firstAttemptAt ?? at;
        await store.outbound.recordSent([
          { id: item.id, sentAt: at, reply: SENT_FOLDER_REPLY, responseCode: 250, attempts, firstAttemptAt },
        ]);
        await this.spool.remove(item);
      }
      await this.spool.dropQueueFolder(serverId);
      if (items.length > 0) {
        logger.warn(
          { serverId, messages: items.length, alert: 'server_deleted_with_mail' },
          'e-mail server deleted with mail still spooled here: set aside as dead letters, not sent',
        );
      }
    }
  }
}
