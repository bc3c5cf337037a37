import type { CredentialService, LoginCredentials } from '../auth/credentials.js';
import type { Clock } from '../shared/clock.js';
import { isMailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { EmailServerRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { classifyDeliveryError, retryDelayMs, type DeliveryFailure } from './delivery-error.js';
import type { OutboundOptions } from './options.js';
import { nextSendAllowedAt, RATE_WINDOW_MS } from './rate-limit.js';
import { SmtpTransport } from './smtp-transport.js';
import { seqTimeOf, type Spool, type SpoolHeader, type SpoolItem } from './spool.js';

export type QueueState = 'ok' | 'paused' | 'held';

export interface QueueStatus {
  /** ok: delivering; paused: relay unreachable, probing; held: credentials refused. */
  state: QueueState;
  depth: number;
  oldestQueuedAt: string | null;
  lastReply: string | null;
  lastErrorAt: string | null;
  resumeAt: string | null;
  /** Set while the hourly rate limit holds messages back. */
  rateLimitedUntil: string | null;
}

export interface QueueDeps {
  spool: Spool;
  store: Store;
  credentials: CredentialService;
  clock: Clock;
  logger: Logger;
  options: OutboundOptions;
  /** Makes the transport; tests may count or wrap it. */
  transportFactory?: (
    server: EmailServerRow,
    login: Awaited<ReturnType<CredentialService['smtpLogin']>>,
  ) => SmtpTransport;
}

/**
 * Delivers one account's spooled mail in order: one message at a time, under the account's
 * sliding-hour rate limit, deleting a file only after the server's 250. Failures are classified:
 * 5xx dead-letters the message, 4xx defers it alone with a growing delay, refused credentials
 * hold the queue, an unreachable relay pauses it and probes every `probeIntervalMs`.
 */
export class AccountQueue {
  private server: EmailServerRow;
  private transport: SmtpTransport | undefined;
  private timer: unknown;
  private draining: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly notBefore = new Map<string, number>();
  private readonly log: Logger;
  private readonly status: QueueStatus = {
    state: 'ok',
    depth: 0,
    oldestQueuedAt: null,
    lastReply: null,
    lastErrorAt: null,
    resumeAt: null,
    rateLimitedUntil: null,
  };
  private resumeAt = 0;
  /** The login the current transport was built with (to know whether a refused login may be an expired token). */
  private login: LoginCredentials | null = null;
  /**
   * The account's queue folder as last listed, oldest first: filled from disk once, then kept up to
   * date by `enqueued()` and by this queue's own deliveries. Re-read from disk whenever it is empty
   * (so files put back by another tool are found) and after `refresh()`.
   */
  private readonly pending: SpoolItem[] = [];
  private readonly pendingNames = new Set<string>();
  private listingStale = true;

  constructor(
    server: EmailServerRow,
    private readonly deps: QueueDeps,
  ) {
    this.server = server;
    this.log = deps.logger.child({ tenantId: server.tenantId, serverId: server.id, component: 'outbound' });
  }

  snapshot(): QueueStatus {
    return { ...this.status };
  }

  /** A message just spooled for this account: joins the queue without listing the folder. */
  enqueued(item: SpoolItem): void {
    this.addPending(item);
    this.kick();
  }

  /** The folder changed behind the queue's back (a dead letter put back): list it again. */
  refresh(): void {
    this.listingStale = true;
    this.kick();
  }

  /** New settings (e.g. a corrected password): rebuild the transport and try at once. */
  updateServer(server: EmailServerRow): void {
    if (server.updatedAt.getTime() === this.server.updatedAt.getTime()) return;
    this.server = server;
    this.dropTransport();
    this.resumeAt = 0;
    this.status.state = 'ok';
    this.kick();
  }

  /** Asks for a drain as soon as possible. */
  kick(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain()
      .catch((err: unknown) => this.log.error({ err }, 'outbound queue failed; retrying'))
      .finally(() => {
        this.draining = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Finishes the message in flight, then stops. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.deps.clock.clearTimeout(this.timer);
    await this.draining;
    this.transport?.close();
  }

  private schedule(at: number): void {
    this.deps.clock.clearTimeout(this.timer);
    this.timer = this.deps.clock.setTimeout(() => this.kick(), Math.max(0, at - this.deps.clock.now()));
  }

  private scheduleLoaded = false;

  private async drain(): Promise<void> {
    const { clock, spool, store } = this.deps;
    if (!this.scheduleLoaded) {
      // Retry times of deferred messages survive a restart.
      for (const row of await store.outbound.listDeferred(this.server.id)) {
        if (row.nextAttemptAt) this.notBefore.set(row.id, row.nextAttemptAt.getTime());
      }
      this.scheduleLoaded = true;
    }
    for (;;) {
      if (this.stopped) return;
      const now = clock.now();
      // While paused or held, new messages only join the queue: no listing, no probing before time.
      if (this.status.state !== 'ok' && now < this.resumeAt) return this.schedule(this.resumeAt);
      if (this.listingStale || this.pending.length === 0) {
        this.listingStale = false;
        for (const found of await spool.list(this.server.id)) this.addPending(found);
      }
      const items = this.pending;
      this.status.depth = items.length;
      this.status.oldestQueuedAt = items.length > 0 ? seqTimeOf(items[0] as SpoolItem) : null;
      if (items.length === 0) return;
      if (this.status.state !== 'ok' && !(await this.probe())) return;
      const item = items.find((i) => (this.notBefore.get(i.id) ?? 0) <= now);
      if (!item) {
        return this.schedule(Math.min(...items.map((i) => this.notBefore.get(i.id) ?? now)));
      }
      const limit = this.server.smtpRateLimitPerHour;
      if (limit > 0) {
        const sends = (await store.sendLog.since(this.server.id, new Date(now - RATE_WINDOW_MS))).map((d) =>
          d.getTime(),
        );
        const allowedAt = nextSendAllowedAt(sends, limit, now);
        if (allowedAt > now) {
          this.status.rateLimitedUntil = new Date(allowedAt).toISOString();
          return this.schedule(allowedAt);
        }
      }
      this.status.rateLimitedUntil = null;
      const carryOn = await this.deliver(item);
      if (!carryOn) return;
    }
  }

  /** Sends one message; false when the queue must stop (paused or held). */
  private async deliver(item: SpoolItem): Promise<boolean> {
    const { clock, spool, store } = this.deps;
    let read;
    try {
      read = await spool.read(item);
    } catch (err) {
      this.removePending(item);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true; // removed by someone else
      this.log.error(
        { err, outboundId: item.id, file: item.name, alert: 'spool_corrupt' },
        'spool file damaged; set aside in corrupt/ and not sent',
      );
      await store.outbound
        .update(item.id, { status: 'failed', lastReply: (err as Error).message, nextAttemptAt: null })
        .catch(() => undefined);
      return true;
    }
    const row = await store.outbound.byId(item.id);
    if (row?.status === 'sent') {
      // Recorded as sent, but the file outlived it (the process or the machine stopped in between).
      await spool.remove(item);
      this.removePending(item);
      return true;
    }
    if (!row) await store.outbound.insertMissing(this.rowFromHeader(read.header));
    const attempts = (row?.attempts ?? 0) + 1;
    const firstAttemptAt = row?.firstAttemptAt ?? new Date(clock.now());
    // The attempt is recorded while the message is on its way (two round trips in the time of one).
    const marking = store.outbound.update(item.id, { status: 'sending', attempts, firstAttemptAt });
    try {
      const { envelope } = read.header;
      const sending = this.withLogin((transport) => transport.send(envelope, read.raw));
      const [result] = await Promise.all([sending, marking.catch(() => undefined)]);
      const sentAt = new Date(clock.now());
      await Promise.all([
        store.sendLog.record(this.server.id, sentAt, item.id),
        store.outbound.update(item.id, {
          status: 'sent',
          sentAt,
          lastReply: result.response,
          lastResponseCode: Number.parseInt(result.response, 10) || 250,
          nextAttemptAt: null,
        }),
      ]);
      await spool.remove(item);
      this.removePending(item);
      this.notBefore.delete(item.id);
      this.status.lastReply = result.response;
      return true;
    } catch (err) {
      await marking.catch(() => undefined); // settled before the failure is written over it
      const failure = classifyDeliveryError(err);
      this.status.lastReply = failure.reply;
      this.status.lastErrorAt = new Date(clock.now()).toISOString();
      return this.handleFailure(item, failure, attempts, firstAttemptAt, err);
    }
  }

  private async handleFailure(
    item: SpoolItem,
    failure: DeliveryFailure,
    attempts: number,
    firstAttemptAt: Date,
    err: unknown,
  ): Promise<boolean> {
    const { clock, spool, store, options } = this.deps;
    const now = clock.now();
    const common = { lastReply: failure.reply, lastResponseCode: failure.responseCode };
    const expired = now - firstAttemptAt.getTime() >= options.maxLifetimeMs;
    if (failure.kind === 'permanent' || (failure.kind === 'transient' && expired)) {
      await spool.deadLetter(item, {
        reply: failure.reply,
        responseCode: failure.responseCode,
        attempts,
        firstAttemptAt: firstAttemptAt.toISOString(),
        failedAt: new Date(now).toISOString(),
      });
      await store.outbound.update(item.id, { status: 'failed', nextAttemptAt: null, ...common });
      this.removePending(item);
      this.notBefore.delete(item.id);
      this.log.warn({ outboundId: item.id, reply: failure.reply, attempts }, 'message dead-lettered');
      return true;
    }
    if (failure.kind === 'transient') {
      const at = now + retryDelayMs(attempts, failure.throttled);
      this.notBefore.set(item.id, at);
      await store.outbound.update(item.id, { status: 'deferred', nextAttemptAt: new Date(at), ...common });
      this.log.info(
        { outboundId: item.id, reply: failure.reply, retryAt: new Date(at).toISOString() },
        'message deferred',
      );
      return true;
    }
    // The account itself cannot send: nothing is dead-lettered, the whole queue waits.
    const held = failure.kind === 'auth';
    this.status.state = held ? 'held' : 'paused';
    this.resumeAt = now + (held ? options.authRetryMs : options.probeIntervalMs);
    this.status.resumeAt = new Date(this.resumeAt).toISOString();
    await store.outbound.update(item.id, { status: 'deferred', nextAttemptAt: new Date(this.resumeAt), ...common });
    this.dropTransport();
    this.log.warn(
      { state: this.status.state, reply: failure.reply, reason: reasonOf(err) },
      held ? 'SMTP login refused; queue held' : 'relay unreachable; queue paused',
    );
    this.schedule(this.resumeAt);
    return false;
  }

  /** Connects and logs in without sending; on success the queue resumes. */
  private async probe(): Promise<boolean> {
    const { clock, options } = this.deps;
    try {
      await this.withLogin((transport) => transport.verify());
      this.log.info({ was: this.status.state }, 'relay reachable again; resuming');
      this.status.state = 'ok';
      this.status.resumeAt = null;
      return true;
    } catch (err) {
      const failure = classifyDeliveryError(err);
      const held = failure.kind === 'auth';
      this.status.state = held ? 'held' : 'paused';
      this.status.lastReply = failure.reply;
      this.status.lastErrorAt = new Date(clock.now()).toISOString();
      this.resumeAt = clock.now() + (held ? options.authRetryMs : options.probeIntervalMs);
      this.status.resumeAt = new Date(this.resumeAt).toISOString();
      this.dropTransport();
      this.schedule(this.resumeAt);
      return false;
    }
  }

  /**
   * Runs `op` on the account's transport. When the server refuses an OAuth 2.0 access token, the
   * token may just have expired: get a fresh one once and try again before the caller holds the queue.
   */
  private async withLogin<T>(op: (transport: SmtpTransport) => Promise<T>): Promise<T> {
    const transport = await this.transportFor();
    try {
      return await op(transport);
    } catch (err) {
      if (!this.login || !('accessToken' in this.login) || classifyDeliveryError(err).kind !== 'auth') throw err;
      this.log.info({ reply: classifyDeliveryError(err).reply }, 'SMTP refused the access token; refreshing it once');
      this.dropTransport();
      return op(await this.transportFor({ forceRefresh: true }));
    }
  }

  private async transportFor(loginOptions: { forceRefresh?: boolean } = {}): Promise<SmtpTransport> {
    if (this.transport) return this.transport;
    const login = await this.deps.credentials.smtpLogin(this.server, loginOptions);
    const timeouts = this.deps.options.smtpTimeouts;
    this.login = login;
    this.transport = this.deps.transportFactory
      ? this.deps.transportFactory(this.server, login)
      : new SmtpTransport({
          host: this.server.smtpHost,
          port: this.server.smtpPort,
          secure: this.server.smtpSecure,
          login,
          ...(timeouts.connectionMs !== undefined && { connectionTimeoutMs: timeouts.connectionMs }),
          ...(timeouts.greetingMs !== undefined && { greetingTimeoutMs: timeouts.greetingMs }),
          ...(timeouts.socketMs !== undefined && { socketTimeoutMs: timeouts.socketMs }),
        });
    return this.transport;
  }

  private dropTransport(): void {
    this.transport?.close();
    this.transport = undefined;
    this.login = null;
  }

  /** Keeps `pending` sorted by name (the FIFO order) and free of duplicates. */
  private addPending(item: SpoolItem): void {
    if (this.pendingNames.has(item.name)) return;
    this.pendingNames.add(item.name);
    let i = this.pending.length;
    while (i > 0 && (this.pending[i - 1] as SpoolItem).name > item.name) i -= 1;
    this.pending.splice(i, 0, item);
  }

  private removePending(item: SpoolItem): void {
    if (!this.pendingNames.delete(item.name)) return;
    const i = this.pending.findIndex((p) => p.name === item.name);
    if (i >= 0) this.pending.splice(i, 1);
  }

  /** A status row rebuilt from the spool header (the engine stopped between spooling and recording). */
  private rowFromHeader(h: SpoolHeader): Parameters<Store['outbound']['insert']>[0] {
    return {
      id: h.id,
      tenantId: h.tenantId,
      destinationId: h.destinationId,
      serverId: h.accountId,
      status: 'queued',
      messageIdHeader: h.messageId,
      conversationId: null,
      subject: '',
      recipients: h.envelope.to,
      attempts: 0,
      lastReply: null,
      lastResponseCode: null,
      nextAttemptAt: null,
      firstAttemptAt: null,
      sentAt: null,
      instanceId: h.instanceId,
    };
  }
}

/** Why credentials were unusable (e.g. REAUTH_REQUIRED: a person must sign in again), for the log. */
function reasonOf(err: unknown): unknown {
  return isMailroomError(err, 'CREDENTIALS_UNAVAILABLE') ? err.details?.['reason'] : undefined;
}
