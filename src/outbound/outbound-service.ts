import type { CredentialService } from '../auth/credentials.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { ConnectionTestResult } from '../shared/connection-test.js';
import { MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { EmailServerRow, OutboundMessageRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { SentRecord } from '../store/outbound-messages.js';
import { Acceptor, type ResponseRenderer } from './accept.js';
import { AccountQueue, type QueueStats, type QueueStatus } from './account-queue.js';
import { GroupCommit } from './group-commit.js';
import { testSmtpConnection } from './connection-test.js';
import { Heartbeat, type HeartbeatStatus } from './heartbeat.js';
import { HeartbeatSender } from './heartbeat-send.js';
import { MailActions, type ActionOutcome, type ActionTarget } from './mail-actions.js';
import { DEFAULT_OUTBOUND_OPTIONS, type OutboundOptions } from './options.js';
import type { SpooledInMemory } from './queued-messages.js';
import { SpoolRetirement } from './retirement.js';
import type { DeadLetterView, OutboundView, RequestView, RetiredView } from './schemas.js';
import { Spool } from './spool.js';
import { deadLetterView, outboundView, requestView, waitingOf } from './views.js';

export type { ResponseRenderer } from './accept.js';

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

/** [67108864] most bytes of accepted messages held in memory for their delivery, in all (64 MiB). */
const SPOOLED_IN_MEMORY_BYTES = 64 * 1024 * 1024;

/**
 * [5000] how often, in ms, the servers, retirements and requests for this instance are looked at
 * again (on the injected clock: a test's fake clock decides when).
 */
const RECONCILE_INTERVAL_MS = 5_000;

/** Idle queues look at their spool folder again every this many reconciles (files put back by the CLI). */
const SWEEP_EVERY = 12;

/**
 * The outbound side: accepts messages only once they are safe in the disk spool, delivers each
 * account's queue in order under its rate limit, sends heartbeats, keeps dead letters.
 */
export class OutboundService {
  readonly options: OutboundOptions;
  readonly spool: Spool;
  private readonly clock: Clock;
  private readonly queues = new Map<string, AccountQueue>();
  /** Tenants' names by id, read with the servers: log lines name the tenant as well as its id. */
  private readonly tenantNames = new Map<string, string>();
  private readonly heartbeats = new Map<string, Heartbeat>();
  private reconciles = 0;
  private appliedFingerprint: string | undefined;
  private timer: unknown;
  private started = false;
  private stopped = false;
  /** Dead letters and cancellations, whichever instance holds the file. */
  private readonly actions: MailActions;
  /** Send requests checked, composed and spooled. */
  private readonly acceptor: Acceptor;
  /** Spools given up: of a retired instance, of deleted servers. */
  private readonly retirement: SpoolRetirement;
  private readonly heartbeatSender: HeartbeatSender;
  /** Accepted messages' bytes kept for their delivery (the queues share the budget). */
  private readonly inMemory: SpooledInMemory = { used: 0, limit: SPOOLED_IN_MEMORY_BYTES };
  /** Deliveries of every account, recorded together (status `sent` + send log, durable). */
  private readonly delivered: GroupCommit<SentRecord>;

  constructor(private readonly deps: OutboundDeps) {
    this.options = { ...DEFAULT_OUTBOUND_OPTIONS, ...deps.options };
    this.clock = deps.clock ?? systemClock;
    this.spool = new Spool(deps.spoolDir, { fsync: this.options.fsync, now: () => this.clock.now() });
    this.acceptor = new Acceptor({
      store: deps.store,
      spool: this.spool,
      clock: this.clock,
      instanceId: deps.instanceId,
      options: this.options,
      renderResponse: deps.renderResponse,
      queues: this.queues,
      queueFor: (server) => this.queueFor(server),
    });
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
    this.retirement = new SpoolRetirement({
      store: deps.store,
      logger: deps.logger,
      spool: this.spool,
      clock: this.clock,
      instanceId: deps.instanceId,
      announce: deps.announce,
      queues: this.queues,
      actions: this.actions,
    });
    this.heartbeatSender = new HeartbeatSender({
      store: deps.store,
      credentials: deps.credentials,
      clock: this.clock,
      logger: deps.logger,
      options: this.options,
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
    await this.retirement.setAsideRetiredSpool();
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
      this.timer = this.clock.setTimeout(() => {
        this.noticeRetirement()
          .then(() => this.reconcile({ ifChanged: true }))
          .then(() => this.actions.carryOutRequests())
          .catch((err: unknown) => this.deps.logger.error({ err }, 'outbound reconcile failed'))
          .finally(() => {
            if (!this.stopped) tick();
          });
      }, RECONCILE_INTERVAL_MS);
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
    for (const [id, name] of await this.deps.store.tenants.names()) this.tenantNames.set(id, name);
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
    if (sweep) await this.retirement.retireDeleted(present);
    this.appliedFingerprint = fingerprint;
  }

  /**
   * "Test connection", SMTP side: connects to the account's relay as its settings say and logs in
   * (when it has a login), without sending; the outcome in plain words. The queue is not touched.
   */
  async testConnection(tenantId: string, serverId: string): Promise<ConnectionTestResult> {
    const server = await this.deps.store.servers.require(tenantId, serverId);
    return testSmtpConnection(server, {
      credentials: this.deps.credentials,
      proxies: this.options.proxies,
      mailAddresses: this.options.mailAddresses,
    });
  }

  /** Accepts a message for sending: 202 semantics — it is on disk when this resolves. */
  accept(tenantId: string, destinationId: string, body: unknown): Promise<OutboundView> {
    return this.acceptor.accept(tenantId, destinationId, body);
  }

  /**
   * This instance was retired while it ran: what the retirement gave up is set aside as dead
   * letters (see `SpoolRetirement.noticeRetirement`). Looked at on every periodic tick.
   */
  async noticeRetirement(): Promise<void> {
    if (this.stopped) return;
    await this.retirement.noticeRetirement();
  }

  /**
   * Gives up the spool of another instance that is gone for good (see
   * `SpoolRetirement.retireInstance`). Refused for this instance and for one that runs.
   */
  retireInstance(instanceId: string): Promise<RetiredView> {
    return this.retirement.retireInstance(instanceId);
  }

  async get(tenantId: string, destinationId: string, id: string): Promise<OutboundView> {
    const row = await this.deps.store.outbound.get(tenantId, id);
    if (!row || row.destinationId !== destinationId) {
      throw new MailroomError('OUTBOUND_NOT_FOUND', `outgoing message ${id} does not exist for this destination`);
    }
    // `sending` is not written (it lasts milliseconds); the queue knows which message is on its way.
    const sending = row.status !== 'sent' && this.queues.get(row.serverId)?.isSending(id) === true;
    if (sending) return outboundView({ ...row, status: 'sending' });
    const queue = this.queues.get(row.serverId)?.snapshot() ?? null;
    return outboundView(row, waitingOf(row, queue, this.clock.now()));
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

  /** Deletes the delivered spool files kept for reuse (they hold sent messages' bytes); answers how many. */
  forgetRecycledFiles(): Promise<number> {
    return this.spool.forgetRecycled();
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
    this.clock.clearTimeout(this.timer);
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
        tenantName: this.tenantNames.get(server.tenantId),
        ...(this.deps.transportFactory && { transportFactory: this.deps.transportFactory }),
      });
      this.queues.set(server.id, queue);
    }
    return queue;
  }

  private startHeartbeat(server: EmailServerRow): void {
    const beat = new Heartbeat(server, {
      clock: this.clock,
      logger: this.deps.logger.child({ serverName: server.name, tenantName: this.tenantNames.get(server.tenantId) }),
      intervalMs: this.options.heartbeatIntervalMs,
      messageIdDomain: this.options.messageIdDomain,
      loopValue: this.deps.instanceId,
      send: (row, envelope, raw, token) => this.heartbeatSender.send(row, envelope, raw, token),
    });
    this.heartbeats.set(server.id, beat);
    beat.start();
  }
}
