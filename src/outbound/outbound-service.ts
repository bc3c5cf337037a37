import { randomUUID } from 'node:crypto';
import type { CredentialService } from '../auth/credentials.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { ConnectionTestResult } from '../shared/connection-test.js';
import { isMailroomError, MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { validate } from '../shared/validation.js';
import { queuedRow, type EmailServerRow, type OutboundMessageRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import {
  WITHDRAWN_OUTCOME,
  type AcceptedRow,
  type OutboundRequestRecord,
  type SendingDestination,
  type SentRecord,
} from '../store/outbound-repositories.js';
import { AccountQueue, type QueueStats, type QueueStatus } from './account-queue.js';
import { composeMessage } from './compose.js';
import { GroupCommit } from './group-commit.js';
import { testSmtpConnection } from './connection-test.js';
import { certainlyNotDelivered } from './delivery-error.js';
import { Heartbeat, HeartbeatDeferred, type HeartbeatStatus } from './heartbeat.js';
import { nextPlaceAt, PLACE_HOLD_MS, RATE_WINDOW_MS } from './rate-limit.js';
import { MailActions, type ActionOutcome, type ActionTarget } from './mail-actions.js';
import { DEFAULT_OUTBOUND_OPTIONS, type OutboundOptions } from './options.js';
import type { SpooledInMemory } from './queued-messages.js';
import { SendInput, type DeadLetterView, type OutboundView, type RequestView, type RetiredView } from './schemas.js';
import { SmtpTransport, smtpTransportOptions } from './smtp-transport.js';
import { SENT_FOLDER_REPLY } from './sent-bookkeeping.js';
import { Spool, type SpoolDraft } from './spool.js';

/** Fills a response file for a reply (the templates module); absent until it is wired. */
export type ResponseRenderer = (request: {
  tenantId: string;
  destinationId: string;
  file: string;
  name: string;
  messageId?: string | undefined;
  agent?: SendInput['agent'];
}) => Promise<{
  text?: string | undefined;
  html?: string | undefined;
  attachments: Array<{ filename: string; contentType: string; content: Buffer; cid?: string | undefined }>;
}>;

export interface OutboundDeps {
  store: Store;
  credentials: CredentialService;
  logger: Logger;
  spoolDir: string;
  /** This instance's id: written into the loop header and the status rows. */
  instanceId: string;
  options?: Partial<OutboundOptions>;
  clock?: Clock;
  renderResponse?: ResponseRenderer;
  /** Makes SMTP transports; tests may wrap it. */
  transportFactory?: ConstructorParameters<typeof AccountQueue>[1]['transportFactory'];
  /**
   * Whether this instance sends a server's heartbeats (it holds the server's lease, so the
   * heartbeat arrives in the mailbox this instance watches); without it, every server's.
   */
  owns?: (serverId: string) => boolean;
  /**
   * How this process announces itself as running (the lease keeper's `owner`, renewed by it
   * later): announced when it starts, before it looks whether it was retired, so that it cannot
   * be retired while it starts. Without it (a service on its own), it only looks.
   */
  announce?: { owner: string; ttlMs: number };
}

/**
 * How long the record of a delivery waits for others to join it, ms: one statement with one
 * synchronous commit (a WAL flush) covers the deliveries of that time, of every account. Nothing
 * waits for it but the status row (`sent` that much later) and the removal of the spool files:
 * until then the delivered files are marked in the spool's sent log, where a restart finds and
 * records them.
 */
const RECORD_DELAY_MS = 20;

/**
 * Longest an accepted message's status row waits for the rows of other accepts under way, ms, so
 * that one insert (one synchronous commit) covers them. A lone accept does not wait. The wait is
 * most of an accept's latency, and with a given number of requests in flight it caps the rate:
 * in the outbound benchmark (16 in flight) 2 ms gave 0.46-0.49 of the baseline where 5 ms gave
 * 0.42-0.44 (accept p50 4-5 ms instead of 7-8), for more commits (more CPU per message).
 */
const ACCEPT_DELAY_MS = 2;

/** [67108864] most bytes of accepted messages held in memory for their delivery, in all (64 MiB). */
const SPOOLED_IN_MEMORY_BYTES = 64 * 1024 * 1024;

/** Most destinations remembered for accepts (the copies are dropped all at once beyond it). */
const DESTINATION_CACHE_SIZE = 10_000;

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

/** Idle queues look at their spool folder again every this many reconciles (files put back by the CLI). */
const SWEEP_EVERY = 12;

function deadLetterView(row: OutboundMessageRow): DeadLetterView {
  return {
    id: row.id,
    serverId: row.serverId,
    destinationId: row.destinationId,
    subject: row.subject,
    recipients: row.recipients,
    reply: row.lastReply,
    responseCode: row.lastResponseCode,
    attempts: row.attempts,
    failedAt: row.deadLetteredAt ? row.deadLetteredAt.toISOString() : null,
    instanceId: row.instanceId,
    refusedRecipients: row.refusedRecipients ?? [],
  };
}

function outboundView(row: OutboundMessageRow): OutboundView {
  return {
    id: row.id,
    destinationId: row.destinationId,
    serverId: row.serverId,
    // Sent, but not to every recipient: an administrator must see it.
    status: row.status === 'sent' && (row.refusedRecipients?.length ?? 0) > 0 ? 'partially-sent' : row.status,
    messageId: row.messageIdHeader,
    conversationId: row.conversationId,
    subject: row.subject,
    recipients: row.recipients,
    attempts: row.attempts,
    lastReply: row.lastReply,
    lastResponseCode: row.lastResponseCode,
    nextAttemptAt: row.nextAttemptAt ? row.nextAttemptAt.toISOString() : null,
    createdAt: row.createdAt.toISOString(),
    sentAt: row.sentAt ? row.sentAt.toISOString() : null,
    refusedRecipients: row.refusedRecipients ?? [],
  };
}

function requestView(r: OutboundRequestRecord, running: ReadonlySet<string>): RequestView {
  const state: RequestView['state'] =
    r.doneAt === null
      ? r.claimedAt === null
        ? 'requested'
        : 'in-progress'
      : r.outcome === 'done'
        ? 'done'
        : r.outcome === WITHDRAWN_OUTCOME
          ? 'withdrawn'
          : 'refused';
  return {
    requestId: r.id,
    id: r.outboundId,
    serverId: r.serverId,
    subject: r.subject,
    action: r.action,
    instanceId: r.instanceId,
    holderRunning: running.has(r.instanceId),
    state,
    outcome: r.outcome,
    requestedAt: r.requestedAt.toISOString(),
    doneAt: r.doneAt ? r.doneAt.toISOString() : null,
  };
}

/** A send request checked and composed, before its status row and spool file are written. */
interface PreparedAccept {
  row: OutboundMessageRow;
  raw: Buffer;
  envelope: { from: string; to: string[] };
  queue: AccountQueue;
}

/**
 * The outbound side: accepts messages only once they are safe in the disk spool, delivers each
 * account's queue in order under its rate limit, sends heartbeats, keeps dead letters.
 */
export class OutboundService {
  readonly options: OutboundOptions;
  readonly spool: Spool;
  private readonly clock: Clock;
  private readonly queues = new Map<string, AccountQueue>();
  private readonly heartbeats = new Map<string, Heartbeat>();
  private reconciles = 0;
  private appliedFingerprint: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  /** Dead letters and cancellations, whichever instance holds the file. */
  private readonly actions: MailActions;
  /** Accepts under way: the status-row insert waits briefly while others than its own rows are. */
  private accepting = 0;
  /** Status rows of accepted messages, inserted together when requests arrive together. */
  private readonly accepted: GroupCommit<AcceptedRow, Set<string>>;
  /**
   * Destinations as last read by an accept, by `tenantId/destinationId`: the next accept composes
   * from the copy, and its status row is inserted only if the row version is unchanged.
   */
  private readonly destinations = new Map<string, SendingDestination>();
  /** Accepted messages' bytes kept for their delivery (the queues share the budget). */
  private readonly inMemory: SpooledInMemory = { used: 0, limit: SPOOLED_IN_MEMORY_BYTES };
  /** Deliveries of every account, recorded together (status `sent` + send log, durable). */
  private readonly delivered: GroupCommit<SentRecord>;

  constructor(private readonly deps: OutboundDeps) {
    this.options = { ...DEFAULT_OUTBOUND_OPTIONS, ...deps.options };
    this.clock = deps.clock ?? systemClock;
    this.spool = new Spool(deps.spoolDir, { fsync: this.options.fsync, now: () => this.clock.now() });
    this.accepted = new GroupCommit(
      (rows) => deps.store.outbound.insertMany(rows),
      500,
      ACCEPT_DELAY_MS,
      (waiting) => this.accepting > waiting,
    );
    this.delivered = new GroupCommit((records) => deps.store.outbound.recordSent(records), 500, RECORD_DELAY_MS);
    this.actions = new MailActions({
      store: deps.store,
      spool: this.spool,
      clock: this.clock,
      logger: deps.logger,
      instanceId: deps.instanceId,
      queueOf: (serverId) => this.queues.get(serverId),
      delivering: () => this.started && !this.stopped,
    });
  }

  async start(): Promise<void> {
    const { modesTightened } = await this.spool.open();
    if (modesTightened > 0) {
      this.deps.logger.info(
        { spoolDir: this.deps.spoolDir, entries: modesTightened },
        'spool files and folders were readable by other users; made them the engine user’s alone (0600/0700)',
      );
    }
    await this.setAsideRetiredSpool();
    // The announcement made just now lasts one lease ttl; the lease keeper renews it once the
    // engine has started. A start that takes longer (a large spool, a slow database) renews it
    // itself meanwhile, so that the instance cannot be retired while it starts.
    const renewing = this.renewAnnouncementWhileStarting();
    try {
      await this.sweepUnspooled();
      await this.actions.syncDeadLetters();
      await this.reconcile();
      this.started = true;
      await this.actions.carryOutRequests();
    } finally {
      renewing.stop();
    }
    const tick = (): void => {
      this.timer = setTimeout(() => {
        this.noticeRetirement()
          .then(() => this.reconcile({ ifChanged: true }))
          .then(() => this.actions.carryOutRequests())
          .catch((err: unknown) => this.deps.logger.error({ err }, 'outbound reconcile failed'))
          .finally(() => {
            if (!this.stopped) tick();
          });
      }, 5_000);
      this.timer.unref();
    };
    tick();
  }

  /** Renews this process's announcement (when it makes one) every quarter ttl until stopped. */
  private renewAnnouncementWhileStarting(): { stop: () => void } {
    const { announce, store, instanceId, logger } = this.deps;
    if (!announce) return { stop: () => undefined };
    const timer = setInterval(
      () => {
        store.leases
          .announce(announce.owner, instanceId, announce.ttlMs)
          .catch((err: unknown) => logger.warn({ err, instanceId }, 'could not renew the announcement while starting'));
      },
      Math.max(1, Math.floor(announce.ttlMs / 4)),
    );
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }

  /**
   * This instance was retired while it was away (its mail given up, see {@link retireInstance}):
   * the messages still in its spool are set aside as dead letters, unsent (their rows say failed),
   * where they are listed again and can be re-queued; its name is free again.
   */
  private async setAsideRetiredSpool(): Promise<void> {
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
    if (this.stopped || !(await store.retiredInstances.has(instanceId))) return;
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
   * A status row is written just before its spool file; an engine stopped between the two leaves
   * a `queued` row with no file (the sender got no 202). Such rows are marked failed, with why.
   */
  private async sweepUnspooled(): Promise<void> {
    const { store, logger } = this.deps;
    const rows = await store.outbound.listQueuedOf(this.deps.instanceId);
    const spooled = new Map<string, Set<string>>();
    for (const row of rows) {
      let ids = spooled.get(row.serverId);
      if (!ids) {
        const queued = await this.spool.list(row.serverId);
        const dead = await this.spool.listDead(row.serverId);
        // Delivered but not yet recorded (the queue records those from the sent log when it starts).
        const sent = await this.spool.listSent(row.serverId);
        ids = new Set([...queued, ...dead, ...sent].map((i) => i.id));
        spooled.set(row.serverId, ids);
      }
      if (ids.has(row.id)) continue;
      await store.outbound.update(row.id, {
        status: 'failed',
        lastReply: 'not accepted: the engine stopped before the message reached the spool (the sender got no 202)',
      });
      logger.warn(
        { tenantId: row.tenantId, serverId: row.serverId, outboundId: row.id },
        'unspooled message marked failed',
      );
    }
  }

  /** Queues for every server (and any spool folder left by a deleted one is kept, not sent). */
  async reconcile(options: { ifChanged?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    // The periodic call reads one row while no server changed, and sweeps idle queues' folders
    // only every SWEEP_EVERY calls: a thousand accounts cost next to nothing at rest.
    const sweep = this.reconciles++ % SWEEP_EVERY === 0 || options.ifChanged !== true;
    const fingerprint = await this.deps.store.servers.fingerprint();
    if (!sweep && fingerprint === this.appliedFingerprint) return;
    const servers = await this.deps.store.servers.listAll();
    const owns = this.deps.owns ?? (() => true);
    const present = new Set<string>();
    for (const server of servers) {
      present.add(server.id);
      const queue = this.queues.get(server.id);
      if (queue) {
        queue.updateServer(server);
        if (sweep) queue.kick(); // finds files another tool put back into the folder
      } else this.queueFor(server).kick();
      const wanted = Boolean(server.smtpHeartbeatAddress) && server.enabled && owns(server.id);
      const beat = this.heartbeats.get(server.id);
      if (beat && !wanted) {
        beat.stop();
        this.heartbeats.delete(server.id);
      } else if (beat) beat.update(server);
      else if (wanted) this.startHeartbeat(server);
    }
    for (const [id, beat] of this.heartbeats) {
      if (present.has(id)) continue;
      beat.stop();
      this.heartbeats.delete(id);
    }
    if (sweep) await this.retireDeleted(present);
    this.appliedFingerprint = fingerprint;
  }

  /**
   * Queues of servers that were deleted (their waiting mail given up by the administrator, see
   * `ServerService.delete`): the queue stops, and each file still in its folder becomes a dead
   * letter on this instance's disk (kept, never sent), its status `failed` with why. A folder
   * is retired only once the database confirms its server is gone.
   */
  private async retireDeleted(present: ReadonlySet<string>): Promise<void> {
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

  /**
   * "Test connection", SMTP side: connects to the account's relay as its settings say and logs in
   * (when it has a login), without sending; the outcome in plain words. The queue is not touched.
   */
  async testConnection(tenantId: string, serverId: string): Promise<ConnectionTestResult> {
    const server = await this.deps.store.servers.require(tenantId, serverId);
    return testSmtpConnection(server, { credentials: this.deps.credentials, proxies: this.options.proxies });
  }

  /** Accepts a message for sending: 202 semantics — it is on disk when this resolves. */
  async accept(tenantId: string, destinationId: string, body: unknown): Promise<OutboundView> {
    const input = validate(SendInput, body);
    const key = `${tenantId}/${destinationId}`;
    const remembered = this.destinations.get(key);
    if (remembered) {
      // Composed from the remembered destination; the status row goes in only if the destination
      // row is still that version. Otherwise it is read again and the message composed again.
      const view = await this.acceptFor(tenantId, input, remembered, remembered.version).catch((err: unknown) => {
        // The remembered server may be gone with a change of the destination: decided on a fresh read.
        if (isMailroomError(err, 'SERVER_NOT_FOUND')) return null;
        throw err;
      });
      if (view) return view;
      this.destinations.delete(key);
    }
    const destination = await this.deps.store.outbound.sendingDestination(tenantId, destinationId);
    if (!destination)
      throw new MailroomError('DESTINATION_NOT_FOUND', `destination ${destinationId} does not exist in this tenant`);
    if (this.destinations.size >= DESTINATION_CACHE_SIZE) this.destinations.clear();
    this.destinations.set(key, destination);
    // Read just now: inserted without the version check, as any read-then-insert.
    const view = await this.acceptFor(tenantId, input, destination, null);
    if (!view) throw new Error('status row not inserted without a version check');
    return view;
  }

  /**
   * Accepts `input` from `destination`; null (nothing written) when `version` is given and the
   * destination row no longer has it.
   */
  private async acceptFor(
    tenantId: string,
    input: SendInput,
    destination: SendingDestination,
    version: string | null,
  ): Promise<OutboundView | null> {
    this.accepting += 1;
    try {
      return await this.prepareAndSpool(tenantId, input, destination, version);
    } finally {
      this.accepting -= 1;
    }
  }

  private async prepareAndSpool(
    tenantId: string,
    input: SendInput,
    destination: SendingDestination,
    version: string | null,
  ): Promise<OutboundView | null> {
    const { store } = this.deps;
    const { row, raw, envelope, queue } = await this.prepareAccept(tenantId, input, destination);
    const { id, destinationId, serverId, messageIdHeader: messageId } = row;
    // The status row and the spool file are written at the same time; the file enters the queue
    // (where the drainer may take it at once) only once the row is in. If the row is not inserted
    // (the destination changed meanwhile), the file is given up; if the spool refuses the
    // message, the row goes again: nothing was accepted.
    const inserting = this.accepted.add({ row, destinationVersion: version });
    // Its failure is handled below, once the spool write is over: a database that fails first
    // (an outage) must not be an unhandled rejection meanwhile, which ends the process.
    inserting.catch(() => undefined);
    let draft: SpoolDraft;
    try {
      draft = await this.spool.write(
        {
          id,
          tenantId,
          accountId: serverId,
          destinationId,
          instanceId: this.deps.instanceId,
          envelope,
          messageId,
          createdAt: new Date(this.clock.now()).toISOString(),
        },
        raw,
      );
    } catch (err) {
      const inserted = await inserting.catch(() => null);
      if (inserted?.has(id)) await store.outbound.delete(id).catch(() => undefined);
      throw err;
    }
    let inserted: Set<string>;
    try {
      inserted = await inserting;
    } catch (err) {
      await this.spool.discard(draft).catch(() => undefined);
      throw err;
    }
    if (!inserted.has(id)) {
      await this.spool.discard(draft).catch(() => undefined);
      return null;
    }
    let spooled;
    try {
      spooled = await this.spool.commit(draft);
    } catch (err) {
      await store.outbound.delete(id).catch(() => undefined);
      throw err;
    }
    queue.enqueued(spooled.item, { header: spooled.header, raw });
    return outboundView(row);
  }

  /** Validates a send request against its destination and composes the message and its status row. */
  private async prepareAccept(
    tenantId: string,
    input: SendInput,
    destination: SendingDestination,
  ): Promise<PreparedAccept> {
    const { store } = this.deps;
    const destinationId = destination.id;
    if (!destination.outgoing || destination.serverId === null) {
      this.destinations.delete(`${tenantId}/${destinationId}`);
      throw new MailroomError(
        'NOT_AVAILABLE_FOR_OUTGOING',
        `destination '${destination.name}' is not available for outgoing mail; enable "outgoing" and give it an e-mail server`,
      );
    }
    // A server in use by a destination cannot be deleted: an existing queue of this tenant's is proof enough.
    const known = this.queues.get(destination.serverId);
    const queue =
      known?.tenantId === tenantId
        ? known
        : await store.servers.get(tenantId, destination.serverId).then((row) => row && this.queueFor(row));
    if (!queue) throw new MailroomError('SERVER_NOT_FOUND', 'the destination’s e-mail server does not exist');

    let to = input.to ?? [];
    let subject = input.subject ?? '';
    let inReplyTo: string | undefined;
    let references: string[] | undefined;
    let conversationId: string | null = null;
    if (input.inReplyTo) {
      const original = await store.messages.get(tenantId, input.inReplyTo);
      if (!original) {
        throw new MailroomError('VALIDATION_FAILED', `'inReplyTo' names no inbound message of this tenant`, {
          field: 'inReplyTo',
        });
      }
      conversationId = original.conversationId;
      if (original.messageIdHeader) {
        inReplyTo = original.messageIdHeader;
        references = [...original.references, original.messageIdHeader];
      }
      if (to.length === 0 && original.fromAddress) to = [original.fromAddress];
      const base = input.subject ?? original.subject;
      subject = /^\s*re\s*:/i.test(base) ? base : `Re: ${base}`;
    }
    const recipients = [...to, ...(input.cc ?? []), ...(input.bcc ?? [])];
    if (recipients.length === 0)
      throw new MailroomError('VALIDATION_FAILED', `'to' needs at least one address`, { field: 'to' });

    let text = input.text;
    let html = input.html;
    const attachments: Array<{ filename: string; contentType: string; content: Buffer; cid?: string | undefined }> = (
      input.attachments ?? []
    ).map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: Buffer.from(a.contentBase64, 'base64'),
    }));
    if (input.response) {
      if (!this.deps.renderResponse) {
        throw new MailroomError('VALIDATION_FAILED', 'response files are not available in this engine', {
          field: 'response',
        });
      }
      const rendered = await this.deps.renderResponse({
        tenantId,
        destinationId,
        file: input.response.file,
        name: input.response.name,
        ...(input.response.group !== undefined && { group: input.response.group }),
        messageId: input.inReplyTo,
        agent: input.agent,
      });
      text = text ?? rendered.text;
      html = html ?? rendered.html;
      attachments.push(...rendered.attachments);
    }
    if (text === undefined && html === undefined) {
      throw new MailroomError('VALIDATION_FAILED', `give 'text', 'html' or a 'response'`, { field: 'text' });
    }
    const total = attachments.reduce((n, a) => n + a.content.length, 0);
    if (total > this.options.maxAttachmentBytes) {
      throw new MailroomError(
        'VALIDATION_FAILED',
        `attachments total ${total} bytes, more than ${this.options.maxAttachmentBytes}`,
        {
          field: 'attachments',
        },
      );
    }

    const id = randomUUID();
    const messageId = `${id}@${this.options.messageIdDomain}`;
    const { raw, envelope } = await composeMessage({
      // The From text is the alias customers see; without one the address stands alone (the
      // destination's name is an administrator's label, not meant for customers).
      from: { name: destination.fromText, address: destination.address },
      to,
      cc: input.cc ?? [],
      bcc: input.bcc ?? [],
      subject,
      text,
      html,
      attachments,
      messageId,
      date: new Date(this.clock.now()),
      inReplyTo,
      references,
      loopValue: this.deps.instanceId,
    });
    const row = queuedRow(
      {
        id,
        tenantId,
        destinationId,
        serverId: destination.serverId,
        messageIdHeader: messageId,
        conversationId,
        subject: subject.replace(/[\r\n]+/g, ' '),
        recipients,
        instanceId: this.deps.instanceId,
      },
      new Date(this.clock.now()),
    );
    return { row, raw, envelope, queue };
  }

  async get(tenantId: string, destinationId: string, id: string): Promise<OutboundView> {
    const row = await this.deps.store.outbound.get(tenantId, id);
    if (!row || row.destinationId !== destinationId) {
      throw new MailroomError('OUTBOUND_NOT_FOUND', `outgoing message ${id} does not exist for this destination`);
    }
    // `sending` is not written (it lasts milliseconds); the queue knows which message is on its way.
    const sending = row.status !== 'sent' && this.queues.get(row.serverId)?.isSending(id) === true;
    return outboundView(sending ? { ...row, status: 'sending' } : row);
  }

  /** Per account: messages waiting in the spool and the age of the oldest, from memory (for /metrics). */
  spoolStats(): Array<{ serverId: string; tenantId?: string; depth: number; oldestAgeMs: number }> {
    const now = this.clock.now();
    return [...this.queues.values()].map((q): QueueStats => q.stats(now));
  }

  status(serverId: string): { queue: QueueStatus | null; heartbeat: HeartbeatStatus | null } {
    return {
      queue: this.queues.get(serverId)?.snapshot() ?? null,
      heartbeat: this.heartbeats.get(serverId)?.snapshot() ?? null,
    };
  }

  /** Dead letters of a tenant, on every instance: of one server, or of all (deleted ones too). */
  async deadLetters(tenantId: string, serverId?: string): Promise<DeadLetterView[]> {
    return (await this.actions.deadLetters(tenantId, serverId)).map(deadLetterView);
  }

  /** Puts a dead letter back at the end of its queue, here or through the instance holding its file. */
  requeueDeadLetter(target: ActionTarget): Promise<ActionOutcome> {
    return this.actions.requeue(target);
  }

  /** Deletes a dead letter for good, here or through the instance holding its file. */
  deleteDeadLetter(target: ActionTarget): Promise<ActionOutcome> {
    return this.actions.deleteDead(target);
  }

  /** Cancels a message still waiting to be sent (it becomes a dead letter), here or through its instance. */
  cancel(tenantId: string, destinationId: string, id: string): Promise<ActionOutcome> {
    return this.actions.cancel({ tenantId, destinationId, id });
  }

  /** A request left for another instance, and what became of it. */
  async request(tenantId: string, requestId: string): Promise<RequestView> {
    const record = await this.actions.request(tenantId, requestId);
    return requestView(record, await this.runningInstances());
  }

  /** A tenant's requests left for other instances (of one server's messages, or all), newest first. */
  async requests(tenantId: string, options: { waitingOnly: boolean; serverId?: string }): Promise<RequestView[]> {
    const records = await this.actions.requests(tenantId, options);
    const running = await this.runningInstances();
    return records.map((r) => requestView(r, running));
  }

  /** Withdraws a request its instance has not taken up (never carried out then). */
  async withdrawRequest(tenantId: string, requestId: string): Promise<RequestView> {
    const record = await this.actions.withdraw(tenantId, requestId);
    return requestView(record, await this.runningInstances());
  }

  /** The instances that announce themselves now. */
  private async runningInstances(): Promise<Set<string>> {
    return new Set((await this.deps.store.leases.instances()).map((i) => i.instanceId));
  }

  /**
   * Carries out the requests other processes left for this instance (cancellations, dead letters
   * re-queued or deleted); done every few seconds while the engine runs. Returns how many.
   */
  carryOutRequests(): Promise<number> {
    return this.actions.carryOutRequests();
  }

  /** The status of a message after an action carried out here (`sending` is never the case then). */
  view(row: OutboundMessageRow): OutboundView {
    return outboundView(row);
  }

  /** A server's credentials work again outside its settings (a new OAuth sign-in): a held queue retries now. */
  credentialsRenewed(serverId: string): void {
    this.queues.get(serverId)?.resumeNow();
  }

  /** Inbound recognised a heartbeat token in a watched mailbox. */
  heartbeatReceived(token: string, at: number): void {
    // The token arrives in whichever watched mailbox the heartbeat address belongs to, often not
    // the sending account's own: every account's heartbeat checks whether the token is its own.
    for (const beat of this.heartbeats.values()) beat.received(token, at);
  }

  /** Finishes each account's message in flight, stops. Accepted mail stays in the spool. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const beat of this.heartbeats.values()) beat.stop();
    await Promise.all([...this.queues.values()].map((q) => q.stop()));
    await this.spool.close();
  }

  private queueFor(server: EmailServerRow): AccountQueue {
    let queue = this.queues.get(server.id);
    if (!queue) {
      queue = new AccountQueue(server, {
        spool: this.spool,
        store: this.deps.store,
        credentials: this.deps.credentials,
        clock: this.clock,
        logger: this.deps.logger,
        options: this.options,
        recordSent: (record) => this.delivered.add(record),
        memory: this.inMemory,
        ...(this.deps.transportFactory && { transportFactory: this.deps.transportFactory }),
      });
      this.queues.set(server.id, queue);
    }
    return queue;
  }

  private startHeartbeat(server: EmailServerRow): void {
    const beat = new Heartbeat(server, {
      clock: this.clock,
      logger: this.deps.logger,
      intervalMs: this.options.heartbeatIntervalMs,
      messageIdDomain: this.options.messageIdDomain,
      loopValue: this.deps.instanceId,
      send: (row, envelope, raw, token) => this.sendHeartbeat(row, envelope, raw, token),
    });
    this.heartbeats.set(server.id, beat);
    beat.start();
  }

  /**
   * Sends one heartbeat on a connection of its own. A heartbeat is a message the account sends:
   * it takes a place under the hourly rate limit, as any message does (and is skipped, with
   * {@link HeartbeatDeferred}, when the hour has none), and it is written into the send log.
   */
  private async sendHeartbeat(
    row: EmailServerRow,
    envelope: { from: string; to: string[] },
    raw: Buffer,
    token: string,
  ): Promise<string> {
    const { sendLog } = this.deps.store;
    const limit = row.smtpRateLimitPerHour;
    const now = this.clock.now();
    if (limit > 0) {
      const allowedAt = await sendLog.reserve(
        row.id,
        token,
        new Date(now),
        new Date(now - RATE_WINDOW_MS - PLACE_HOLD_MS),
        (lines) => nextPlaceAt(lines, limit, now),
      );
      if (allowedAt > now) {
        throw new HeartbeatDeferred(
          `heartbeat not sent: the hourly rate limit (${limit}) has no place before ${new Date(allowedAt).toISOString()}`,
        );
      }
    }
    const login = await this.deps.credentials.smtpLogin(row).catch(async (err: unknown) => {
      if (limit > 0) await sendLog.release(token).catch(() => undefined);
      throw err;
    });
    const transport = new SmtpTransport(
      smtpTransportOptions(row, login, this.options.smtpTimeouts, this.options.proxies),
    );
    let response: string;
    try {
      response = (await transport.send(envelope, raw)).response;
    } catch (err) {
      if (limit > 0) {
        // A heartbeat that may have gone (cut off during or after DATA) counts as a send.
        // (Should the database fail here, the place counts for an hour and a quarter: fewer sends, never more.)
        const settling = certainlyNotDelivered(err)
          ? sendLog.release(token)
          : sendLog.settle(token, new Date(this.clock.now()));
        await settling.catch(() => undefined);
      }
      throw err;
    } finally {
      transport.close();
    }
    const sentAt = new Date(this.clock.now());
    // Without a limit it is logged all the same: it counts should a limit be set later.
    const logged = limit > 0 ? sendLog.settle(token, sentAt) : sendLog.record(row.id, sentAt, token);
    await logged.catch((err: unknown) =>
      this.deps.logger.warn({ err, serverId: row.id }, 'could not write a heartbeat into the send log'),
    );
    return response;
  }
}
