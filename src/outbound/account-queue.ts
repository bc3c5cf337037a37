import type { CredentialService, LoginCredentials } from '../auth/credentials.js';
import { actorDetail } from '../store/trace-events.js';
import { backoffDelay, type BackoffOptions } from '../shared/backoff.js';
import type { Clock } from '../shared/clock.js';
import { isMailroomError } from '../shared/errors.js';
import { serverLogFields, type Logger } from '../shared/logger.js';
import { outboundMessages, rateLimitWaits } from '../shared/metrics.js';
import type { SentRecord } from '../store/outbound-messages.js';
import type { EmailServerRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import {
  certainlyNotDelivered,
  classifyDeliveryError,
  retryDelayMs,
  splitRefusals,
  type DeliveryFailure,
} from './delivery-error.js';
import type { OutboundOptions } from './options.js';
import { RateLimitPlaces } from './rate-limit-places.js';
import { QueuedMessages, type SpooledInMemory, type SpooledMessage } from './queued-messages.js';
import { SentBookkeeping, statusRowFromHeader } from './sent-bookkeeping.js';
import { NOT_BEGUN, SmtpTransport, smtpTransportOptions, type RecipientRefusal } from './smtp-transport.js';
import { graphTransportFor, type MailTransport } from './graph-transport.js';
import { queuedAtOf, seqTimeOf, type Spool, type SpoolHeader, type SpoolItem } from './spool.js';
import { WaitingWarning } from './waiting-warning.js';

export type QueueState = 'ok' | 'paused' | 'held';

/**
 * When a pass over the queue that failed (the database or the spool folder could not be reached)
 * is tried again: after 1 s, doubling up to 5 s, ms. A queue goes on by itself once the database
 * is back (within 5 s), not only at the next message accepted or the periodic sweep (a minute).
 */
const FAILED_PASS_RETRY: BackoffOptions = { minMs: 1_000, maxMs: 5_000 };

/**
 * A queue's state. It shows either the current problem (`paused` or `held`: `lastErrorAt` and
 * `resumeAt` set, `lastProblemEndedAt` null) or, once `ok` again, when the last problem ended
 * (`lastErrorAt` and `resumeAt` null): never a mix (issue 30, item 4).
 */
export interface QueueStatus {
  /** ok: delivering; paused: relay unreachable, probing; held: credentials refused. */
  state: QueueState;
  depth: number;
  oldestQueuedAt: string | null;
  /** The server's last reply (while paused or held: why), or null when a problem just ended. */
  lastReply: string | null;
  /** While paused or held: when the account last failed. */
  lastErrorAt: string | null;
  /** While paused or held: when the relay is tried again. */
  resumeAt: string | null;
  /** While ok: when the last pause or hold ended (null when there was none). */
  lastProblemEndedAt: string | null;
  /** Set while the hourly rate limit holds messages back. */
  rateLimitedUntil: string | null;
  /**
   * Recipients the server refused while it took a message for the others, since this engine
   * started: for good (5xx, recorded on the message, which is partially sent) and for now (4xx,
   * tried again for them alone), with the last refusal.
   */
  recipientRefusals: RecipientRefusals;
}

export interface RecipientRefusals {
  permanent: number;
  temporary: number;
  last: { outboundId: string; address: string; reply: string; responseCode: number | null; at: string } | null;
}

/** What the metrics collector reads per account: queued messages and the age of the oldest. */
export interface QueueStats {
  serverId: string;
  tenantId: string;
  depth: number;
  /** How long the oldest queued message has waited, ms (0 when none waits). */
  oldestAgeMs: number;
}

export interface QueueDeps {
  spool: Spool;
  store: Store;
  credentials: CredentialService;
  clock: Clock;
  logger: Logger;
  options: OutboundOptions;
  /** Records a delivery (status `sent` + send log); group-committed across accounts, resolves once durable. */
  recordSent: (record: SentRecord) => Promise<void>;
  /**
   * Bytes of accepted messages kept in memory for their delivery, shared by every queue: a message
   * accepted by this process is sent from the bytes it was spooled with instead of being read back.
   */
  memory: SpooledInMemory;
  /** The tenant's name, for log lines (they name tenant and server by name as well as id). */
  tenantName?: string | undefined;
  /** Makes the transport; tests may count or wrap it. */
  transportFactory?: (
    server: EmailServerRow,
    login: Awaited<ReturnType<CredentialService['smtpLogin']>>,
  ) => MailTransport;
}

/**
 * Delivers one account's spooled mail in order: one message at a time, under the account's
 * sliding-hour rate limit, deleting a file only after the server's 250. Failures are classified:
 * 5xx dead-letters the message, 4xx defers it alone with a growing delay, refused credentials
 * hold the queue, an unreachable relay pauses it and probes every `probeIntervalMs`.
 */
export class AccountQueue {
  private server: EmailServerRow;
  private transport: MailTransport | undefined;
  private timer: unknown;
  private draining: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly notBefore = new Map<string, number>();
  private readonly log: Logger;
  /** The state as it changes; the depth and the oldest message are read from the queue when asked for. */
  private readonly status: Omit<QueueStatus, 'depth' | 'oldestQueuedAt'> = {
    state: 'ok',
    lastReply: null,
    lastErrorAt: null,
    resumeAt: null,
    lastProblemEndedAt: null,
    rateLimitedUntil: null,
    recipientRefusals: { permanent: 0, temporary: 0, last: null },
  };
  private resumeAt = 0;
  /** Passes that failed in a row (the next one waits longer). */
  private failedPasses = 0;
  /** The login the current transport was built with (to know whether a refused login may be an expired token). */
  private login: LoginCredentials | null = null;
  /**
   * The account's queue folder as last listed, oldest first: filled from disk once, then kept up to
   * date by `enqueued()` and by this queue's own deliveries. Re-read from disk whenever it is empty
   * (so files put back by another tool are found) and after `refresh()`.
   */
  private readonly queued: QueuedMessages;
  private listingStale = true;
  /** Attempts so far per message, known without reading its row (accepted here, or read once). */
  private readonly facts = new Map<string, { attempts: number; firstAttemptAt: Date | null }>();
  /** The message on its way to the server now (from MAIL FROM on). */
  private sendingId: string | null = null;
  /** The message of the delivery attempt under way (its connection being made, or on its way). */
  private attemptingId: string | null = null;
  /**
   * Messages cancelled: never sent, even if their turn comes before their file is set aside, and
   * an attempt that meets one ends without touching its row or file. Forgotten once both the
   * cancellation and any attempt of the message are over (a re-queued dead letter is sent again).
   */
  private readonly cancelled = new Set<string>();
  private readonly labelsByOutcome = new Map<string, { tenant_id: string; server_id: string; outcome: string }>();
  /**
   * Files of cancelled messages (set aside as dead letters, or being set aside): never queued or
   * sent again, even when a listing or a read of the folder made before the move returns one
   * after the cancellation is over. A re-queued dead letter gets a new name. Forgotten once a
   * listing no longer shows the file.
   */
  private readonly setAside = new Set<string>();
  /** The settings changed while a message was on its way: the transport is rebuilt after that attempt. */
  private transportStale = false;
  /** Cancellations under way, by message: a second one for the same message joins the first. */
  private readonly cancels = new Map<string, Promise<'cancelled' | 'sending' | 'absent'>>();
  private readonly waiting: WaitingWarning;
  /** Delivered messages on their way out of the spool (marked in the sent log, recorded, recycled). */
  private readonly sent: SentBookkeeping;
  /** The account's places under its hourly rate limit, one taken for each message before it goes. */
  private readonly places: RateLimitPlaces;

  constructor(
    server: EmailServerRow,
    private readonly deps: QueueDeps,
  ) {
    this.server = server;
    this.log = deps.logger.child({ ...serverLogFields(server, deps.tenantName), component: 'outbound' });
    this.places = new RateLimitPlaces(deps.store.sendLog);
    this.waiting = new WaitingWarning({
      clock: deps.clock,
      store: deps.store,
      log: this.log,
      tenantId: server.tenantId,
      serverId: server.id,
      warnAfterMs: deps.options.warnAfterMs,
      describe: () => ({ state: this.status.state, lastReply: this.status.lastReply }),
    });
    this.sent = new SentBookkeeping({
      spool: deps.spool,
      store: deps.store,
      log: this.log,
      serverId: server.id,
      recordSent: deps.recordSent,
      relist: () => this.refresh(),
    });
    this.queued = new QueuedMessages(
      deps.spool,
      deps.memory,
      (name) => this.sent.isFinishing(name) || this.setAside.has(name),
    );
  }

  snapshot(): QueueStatus {
    // The oldest message's time is formatted when asked for, not on every delivery. The depth is
    // the queue's own count, as in `stats` (/metrics): also while the queue is paused or held and
    // messages only join it.
    const oldest = this.queued.items[0];
    return { ...this.status, depth: this.queued.length, oldestQueuedAt: oldest ? seqTimeOf(oldest) : null };
  }

  /** Depth and age of the oldest waiting message, from memory (cheap enough for every scrape). */
  stats(now: number): QueueStats {
    const first = this.queued.items[0];
    const oldest = first ? queuedAtOf(first) : null;
    return {
      serverId: this.server.id,
      tenantId: this.server.tenantId,
      depth: this.queued.length,
      oldestAgeMs: oldest === null ? 0 : Math.max(0, now - oldest),
    };
  }

  get tenantId(): string {
    return this.server.tenantId;
  }

  /** Whether this message is on its way to the server right now. */
  isSending(id: string): boolean {
    return this.sendingId === id;
  }

  /**
   * Takes a waiting message out of the queue and sets its file aside as a dead letter (kept, so
   * that it can be re-queued), its row `failed` with `reply`. `sending` when it is on its way to
   * the server now (too late), `absent` when its file is not in the queue folder (delivered, or
   * never here).
   */
  cancel(id: string, reply: string): Promise<'cancelled' | 'sending' | 'absent'> {
    const running = this.cancels.get(id);
    if (running) return running;
    const cancelling = this.cancelOnce(id, reply).finally(() => {
      this.cancels.delete(id);
      if (this.attemptingId !== id) this.cancelled.delete(id); // else at the attempt's end
    });
    this.cancels.set(id, cancelling);
    return cancelling;
  }

  private async cancelOnce(id: string, reply: string): Promise<'cancelled' | 'sending' | 'absent'> {
    if (this.sendingId === id) return 'sending';
    const item =
      this.queued.items.find((i) => i.id === id) ??
      (await this.deps.spool.list(this.server.id)).find((i) => i.id === id && !this.sent.isFinishing(i.name));
    if (!item) return 'absent';
    if (this.sendingId === id) return 'sending'; // its turn came while the folder was listed
    // From here the queue skips it even if it is about to be sent (its bytes may be in memory),
    // and an attempt connecting for it now ends before MAIL FROM.
    this.cancelled.add(id);
    return this.cancelQueued(item, reply);
  }

  private async cancelQueued(item: SpoolItem, reply: string): Promise<'cancelled' | 'absent'> {
    const { id } = item;
    const { clock, spool, store } = this.deps;
    const now = clock.now();
    const facts = this.facts.get(id);
    this.setAside.add(item.name);
    try {
      await spool.deadLetter(item, {
        reply,
        responseCode: null,
        attempts: facts?.attempts ?? 0,
        firstAttemptAt: facts?.firstAttemptAt?.toISOString() ?? null,
        failedAt: new Date(now).toISOString(),
      });
    } catch (err) {
      this.setAside.delete(item.name);
      this.refresh(); // the file, if still queued, is found again once the cancellation is over
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent'; // sent or removed meanwhile
      throw err;
    }
    await store.outbound.failUnlessSent(id, reply, new Date(now), { type: 'cancelled', detail: actorDetail() });
    this.removePending(item);
    this.notBefore.delete(id);
    this.facts.delete(id);
    outboundMessages.inc(this.outcomeLabels('cancelled'));
    this.log.info({ outboundId: id }, 'message cancelled; kept as a dead letter');
    this.kick(); // a queue waiting for this message's retry time looks again
    return 'cancelled';
  }

  /**
   * A message just spooled for this account: joins the queue without listing the folder or reading
   * its row. With `message` (the header and bytes just written durably), it is sent from memory
   * while the shared budget allows.
   */
  enqueued(item: SpoolItem, message?: SpooledMessage): void {
    this.facts.set(item.id, { attempts: 0, firstAttemptAt: null });
    this.queued.add(item, message);
    this.kick();
  }

  /** The folder changed behind the queue's back (a dead letter put back): list it again. */
  refresh(): void {
    this.listingStale = true;
    this.kick();
  }

  /**
   * New settings (e.g. a corrected password): rebuild the transport and try at once. A message on
   * its way keeps its connection until the server has answered it (closing it then could deliver
   * the message twice); the transport is rebuilt once that attempt is over.
   */
  updateServer(server: EmailServerRow): void {
    if (server.updatedAt.getTime() === this.server.updatedAt.getTime()) return;
    this.server = server;
    if (this.attemptingId !== null) this.transportStale = true;
    else this.dropTransport();
    this.resumeAt = 0;
    // New settings: whatever held the queue is over (should they fail too, the next try says so).
    this.endProblem();
    this.kick();
  }

  /** The credentials may work again (a new sign-in): a held queue tries at once instead of at its next probe. */
  resumeNow(): void {
    if (this.status.state !== 'held') return;
    this.resumeAt = 0;
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
      .then(() => {
        this.failedPasses = 0;
      })
      .catch((err: unknown) => {
        this.failedPasses += 1;
        const retryInMs = backoffDelay(this.failedPasses, FAILED_PASS_RETRY);
        this.log.error({ err, retryInMs }, 'outbound queue failed; retrying');
        if (!this.stopped) this.schedule(this.deps.clock.now() + retryInMs);
      })
      .finally(() => {
        this.draining = undefined;
        this.waiting.check(this.queued.items);
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
    this.waiting.stop();
    await this.draining;
    await this.sent.settled();
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
      await this.sent.recordLeftovers();
      if (this.listingStale || this.queued.length === 0) {
        this.listingStale = false;
        const listed = await spool.list(this.server.id);
        for (const found of listed) this.queued.add(found);
        if (this.setAside.size > 0) {
          const names = new Set(listed.map((i) => i.name));
          for (const name of this.setAside) if (!names.has(name)) this.setAside.delete(name);
        }
      }
      const items = this.queued.items;
      if (items.length === 0) return;
      if (this.status.state !== 'ok' && !(await this.probe())) return;
      const item = items.find((i) => (this.notBefore.get(i.id) ?? 0) <= now);
      if (!item) {
        return this.schedule(Math.min(...items.map((i) => this.notBefore.get(i.id) ?? now)));
      }
      const limit = this.server.smtpRateLimitPerHour;
      if (limit > 0) {
        // A place in the send log, taken under a lock every instance sharing the database
        // respects: two engines delivering for this account never both take the last one.
        const allowedAt = await this.places.take(this.server.id, item.id, limit, now);
        if (allowedAt > now) {
          if (this.status.rateLimitedUntil === null) {
            rateLimitWaits.inc({ tenant_id: this.server.tenantId, server_id: this.server.id });
            // The message at the head waits: its trace says until when, and why (once per wait).
            await this.deps.store.trace
              .append([
                {
                  tenantId: this.server.tenantId,
                  messageId: item.id,
                  type: 'rate-limited',
                  detail: { serverId: this.server.id, limitPerHour: limit, until: new Date(allowedAt).toISOString() },
                  at: new Date(now),
                },
              ])
              .catch((err: unknown) =>
                this.log.warn({ err, outboundId: item.id }, 'could not trace a rate-limit wait'),
              );
          }
          this.status.rateLimitedUntil = new Date(allowedAt).toISOString();
          return this.schedule(allowedAt);
        }
      }
      this.status.rateLimitedUntil = null;
      const carryOn = await this.deliver(item, limit > 0);
      if (!carryOn) return;
    }
  }

  /**
   * Sends one message; false when the queue must stop (paused or held). With `placeTaken`, the
   * rate limit took a place in the send log for it: given back unless the message may have gone.
   */
  private async deliver(item: SpoolItem, placeTaken: boolean): Promise<boolean> {
    const { clock, spool, store } = this.deps;
    const giveBackPlace = async (): Promise<void> => {
      if (!placeTaken) return;
      await this.places.release(item.id).catch((err: unknown) =>
        // The place then counts as a send for an hour and a quarter: fewer sends, never more.
        this.log.warn({ err, outboundId: item.id }, 'could not give back a rate-limit place'),
      );
    };
    let read;
    try {
      read = await this.queued.read(item);
    } catch (err) {
      await giveBackPlace();
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
    let facts = this.facts.get(item.id);
    if (!facts) {
      // Found on disk (a restart, a requeued dead letter): the row says how far it got.
      const row = await store.outbound.byId(item.id);
      if (row?.status === 'sent') {
        // Recorded as sent, but the file outlived it (the process or the machine stopped in between).
        await giveBackPlace();
        await spool.remove(item);
        this.removePending(item);
        return true;
      }
      if (!row) await store.outbound.insertMissing(statusRowFromHeader(read.header));
      facts = { attempts: row?.attempts ?? 0, firstAttemptAt: row?.firstAttemptAt ?? null };
      this.facts.set(item.id, facts);
    }
    const attempts = facts.attempts + 1;
    const firstAttemptAt = facts.firstAttemptAt ?? new Date(clock.now());
    if (this.isCancelled(item)) {
      // Cancelled meanwhile: its file is being set aside.
      this.removePending(item);
      await giveBackPlace();
      return true;
    }
    facts.attempts = attempts;
    facts.firstAttemptAt = firstAttemptAt;
    // On its way (too late to cancel) from MAIL FROM on: while the connection is made (up to its
    // timeout when the relay does not answer) it can still be cancelled.
    const mayBegin = (): boolean => {
      if (this.isCancelled(item)) return false;
      this.sendingId = item.id;
      return true;
    };
    this.attemptingId = item.id;
    try {
      const { envelope } = read.header;
      const sending = this.withLogin((transport) =>
        transport.send(envelope, read.raw, { beforeDot: this.sent.gate, mayBegin }),
      );
      this.queued.readAhead(item, (i) => (this.notBefore.get(i.id) ?? 0) <= clock.now());
      const result = await sending;
      if (result.refused.length > 0) {
        const waits = await this.recordRefusals(item, read, result, attempts, firstAttemptAt);
        if (waits) return true; // the file waits for the recipients refused for now, they alone
      }
      this.sent.track(item, {
        id: item.id,
        sentAt: new Date(clock.now()),
        reply: result.response,
        responseCode: Number.parseInt(result.response, 10) || 250,
        attempts,
        firstAttemptAt,
      });
      this.removePending(item);
      this.notBefore.delete(item.id);
      this.facts.delete(item.id);
      this.status.lastReply = result.response;
      outboundMessages.inc(this.outcomeLabels('sent'));
      this.log.info({ outboundId: item.id, attempts, reply: result.response }, 'message sent');
      return true;
    } catch (err) {
      if ((err as { code?: unknown }).code === NOT_BEGUN || this.isCancelled(item)) {
        // Cancelled while the connection was made (given up before MAIL FROM, or the connection
        // failed): the cancellation sets its file aside and says why.
        facts.attempts = attempts - 1;
        this.removePending(item);
        this.refresh(); // should the cancellation fail, its file is found again
        await giveBackPlace();
        return true;
      }
      if (certainlyNotDelivered(err)) await giveBackPlace();
      else if (placeTaken) {
        // It may have been delivered (the connection went during or after DATA): it counts as a
        // send for the next hour, as a delivery would.
        await this.places.settle(item.id, new Date(clock.now())).catch((e: unknown) => {
          this.log.warn({ err: e, outboundId: item.id }, 'could not settle a rate-limit place');
        });
      }
      const failure = classifyDeliveryError(err);
      // One message's refusal is that message's (its status and the dead letters say so); only
      // an account that cannot send is the queue's problem (`enterProblem`).
      this.status.lastReply = failure.reply;
      return this.handleFailure(item, failure, attempts, firstAttemptAt, err);
    } finally {
      this.sendingId = null;
      this.attemptingId = null;
      if (this.transportStale) {
        this.transportStale = false;
        this.dropTransport();
      }
      if (!this.cancels.has(item.id)) this.cancelled.delete(item.id);
    }
  }

  /**
   * The server took the message for some recipients and refused others at RCPT TO. Those refused
   * for good (5xx) are recorded on the row with its reply to each (the message is partly sent).
   * Those refused for now (4xx) get it again later, they alone: the spool file is narrowed to them
   * (durably, so that a restart sends it to nobody who got it) and the message is deferred; true
   * then. Should the file not be narrowed, it is deferred for every recipient (a duplicate to
   * those who got it rather than a loss).
   */
  private async recordRefusals(
    item: SpoolItem,
    read: { header: SpoolHeader; raw: Buffer },
    result: { refused: RecipientRefusal[]; response: string },
    attempts: number,
    firstAttemptAt: Date,
  ): Promise<boolean> {
    const { clock, spool, store } = this.deps;
    const { refused } = result;
    const now = clock.now();
    const { permanent, temporary } = splitRefusals(refused);
    const counts = this.status.recipientRefusals;
    const last = permanent.at(-1) ?? temporary.at(-1);
    this.status.recipientRefusals = {
      permanent: counts.permanent + permanent.length,
      temporary: counts.temporary + temporary.length,
      last: last
        ? {
            outboundId: item.id,
            address: last.address,
            reply: last.reply,
            responseCode: last.responseCode,
            at: new Date(now).toISOString(),
          }
        : counts.last,
    };
    const describe = (list: RecipientRefusal[]): string => list.map((r) => `${r.address} (${r.reply})`).join(', ');
    if (permanent.length > 0) {
      const at = new Date(now).toISOString();
      await store.outbound
        .addRefusedRecipients(
          item.id,
          permanent.map((r) => ({ address: r.address, reply: r.reply, responseCode: r.responseCode, at })),
        )
        .catch((err: unknown) =>
          this.log.error({ err, outboundId: item.id }, 'could not record the recipients the server refused'),
        );
      this.log.warn(
        { outboundId: item.id, refused: permanent.map((r) => r.address), alert: 'recipients_refused' },
        `message partly sent: refused for good by the server: ${describe(permanent)}`,
      );
    }
    if (temporary.length === 0) return false;
    const waiting = temporary.map((r) => r.address);
    // Those who got it now leave the spool file: the row remembers them (a dead letter of what
    // is left still names every recipient with what became of each).
    const refusedNow = new Set(refused.map((r) => r.address.toLowerCase()));
    const at = new Date(now).toISOString();
    await store.outbound
      .addAcceptedRecipients(
        item.id,
        read.header.envelope.to
          .filter((address) => !refusedNow.has(address.toLowerCase()))
          .map((address) => ({ address, reply: result.response, at })),
      )
      .catch((err: unknown) =>
        this.log.error({ err, outboundId: item.id }, 'could not record the recipients the server took the message for'),
      );
    try {
      await spool.narrow(item, read.header, read.raw, waiting);
    } catch (err) {
      this.log.error(
        { err, outboundId: item.id },
        'could not narrow a partly sent message to the recipients refused for now: it goes to every recipient again',
      );
    }
    const reply = `partly sent; refused for now, to be tried again: ${describe(temporary)}`.slice(0, 1000);
    const retryAt =
      now +
      retryDelayMs(
        attempts,
        temporary.some((r) => /\b4\.7\.\d+\b/.test(r.reply)),
      );
    this.notBefore.set(item.id, retryAt);
    // Should the row not be written (the database away), the retry time is kept here all the same.
    await store.outbound
      .deferUnlessFailed(
        item.id,
        {
          nextAttemptAt: new Date(retryAt),
          lastReply: reply,
          lastResponseCode: temporary[0]?.responseCode ?? null,
          attempts,
          firstAttemptAt,
        },
        { type: 'smtp-attempt', at: new Date(now) },
      )
      .catch((err: unknown) => this.log.error({ err, outboundId: item.id }, 'could not record a partly sent message'));
    this.status.lastReply = reply;
    outboundMessages.inc(this.outcomeLabels('deferred'));
    this.log.info(
      { outboundId: item.id, waiting, retryAt: new Date(retryAt).toISOString() },
      'message partly sent; deferred for the others',
    );
    return true;
  }

  /** Whether the message was cancelled (its cancellation under way, or its file set aside). */
  private isCancelled(item: SpoolItem): boolean {
    return this.cancelled.has(item.id) || this.setAside.has(item.name);
  }

  /** The metric labels of a message's outcome, made once per outcome (a server keeps its ids). */
  private outcomeLabels(outcome: string): { tenant_id: string; server_id: string; outcome: string } {
    let labels = this.labelsByOutcome.get(outcome);
    if (!labels) {
      labels = { tenant_id: this.server.tenantId, server_id: this.server.id, outcome };
      this.labelsByOutcome.set(outcome, labels);
    }
    return labels;
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
    const common = { lastReply: failure.reply, lastResponseCode: failure.responseCode, attempts, firstAttemptAt };
    const expired = now - firstAttemptAt.getTime() >= options.maxLifetimeMs;
    if (failure.kind === 'permanent' || (failure.kind === 'transient' && expired)) {
      await spool.deadLetter(item, {
        reply: failure.reply,
        responseCode: failure.responseCode,
        attempts,
        firstAttemptAt: firstAttemptAt.toISOString(),
        failedAt: new Date(now).toISOString(),
      });
      await store.outbound.deadLetter(item.id, common, new Date(now));
      this.removePending(item);
      this.notBefore.delete(item.id);
      this.facts.delete(item.id);
      outboundMessages.inc(this.outcomeLabels('dead_lettered'));
      this.log.warn(
        { outboundId: item.id, reply: failure.reply, attempts },
        failure.kind === 'permanent' ? 'message refused for good; dead-lettered' : 'message expired; dead-lettered',
      );
      return true;
    }
    if (failure.kind === 'transient') {
      const at = now + Math.max(retryDelayMs(attempts, failure.throttled), failure.retryAfterMs ?? 0);
      this.notBefore.set(item.id, at);
      await store.outbound.deferUnlessFailed(
        item.id,
        { nextAttemptAt: new Date(at), ...common },
        { type: 'smtp-attempt', at: new Date(now) },
      );
      outboundMessages.inc(this.outcomeLabels('deferred'));
      this.log.info(
        { outboundId: item.id, reply: failure.reply, retryAt: new Date(at).toISOString() },
        'message deferred',
      );
      return true;
    }
    // The account itself cannot send: nothing is dead-lettered, the whole queue waits.
    const held = failure.kind === 'auth';
    // A server that said how long to wait (Graph's 429 Retry-After) is not asked again sooner.
    const resumeAt = now + Math.max(held ? options.authRetryMs : options.probeIntervalMs, failure.retryAfterMs ?? 0);
    // The message's row first: whoever sees the queue paused or held sees the message deferred.
    await store.outbound.deferUnlessFailed(
      item.id,
      { nextAttemptAt: new Date(resumeAt), ...common },
      { type: 'smtp-attempt', at: new Date(now) },
    );
    this.enterProblem(held ? 'held' : 'paused', failure.reply, now, resumeAt);
    outboundMessages.inc(this.outcomeLabels('deferred'));
    this.dropTransport();
    this.log.warn(
      { state: this.status.state, reply: failure.reply, reason: reasonOf(err) },
      held ? 'SMTP login refused; queue held' : 'relay unreachable; queue paused',
    );
    this.schedule(this.resumeAt);
    return false;
  }

  /** The account cannot send (`paused` or `held`) until `resumeAt`; the status says why and since when. */
  private enterProblem(state: 'paused' | 'held', reply: string, now: number, resumeAt: number): void {
    this.status.state = state;
    this.status.lastReply = reply;
    this.status.lastErrorAt = new Date(now).toISOString();
    this.resumeAt = resumeAt;
    this.status.resumeAt = new Date(resumeAt).toISOString();
    this.status.lastProblemEndedAt = null;
  }

  /** Back to `ok`: the problem's fields go, and when it ended is kept (nothing changes when there was none). */
  private endProblem(): void {
    if (this.status.state === 'ok') return;
    this.status.state = 'ok';
    this.status.lastReply = null;
    this.status.lastErrorAt = null;
    this.status.resumeAt = null;
    this.status.lastProblemEndedAt = new Date(this.deps.clock.now()).toISOString();
  }

  /** Connects and logs in without sending; on success the queue resumes. */
  private async probe(): Promise<boolean> {
    const { clock, options } = this.deps;
    try {
      await this.withLogin((transport) => transport.verify());
      this.log.info({ was: this.status.state }, 'relay reachable again; resuming');
      this.endProblem();
      return true;
    } catch (err) {
      const failure = classifyDeliveryError(err);
      const held = failure.kind === 'auth';
      const now = clock.now();
      this.enterProblem(
        held ? 'held' : 'paused',
        failure.reply,
        now,
        now + (held ? options.authRetryMs : options.probeIntervalMs),
      );
      this.dropTransport();
      this.schedule(this.resumeAt);
      return false;
    }
  }

  /**
   * Runs `op` on the account's transport. When the server refuses an OAuth 2.0 access token, the
   * token may just have expired: get a fresh one once and try again before the caller holds the queue.
   */
  private async withLogin<T>(op: (transport: MailTransport) => Promise<T>): Promise<T> {
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

  private async transportFor(loginOptions: { forceRefresh?: boolean } = {}): Promise<MailTransport> {
    if (this.transport) return this.transport;
    const login = await this.deps.credentials.smtpLogin(this.server, loginOptions);
    this.login = login;
    const { options } = this.deps;
    this.transport = this.deps.transportFactory
      ? this.deps.transportFactory(this.server, login)
      : this.server.protocol === 'graph'
        ? await graphTransportFor(this.server, login, options)
        : new SmtpTransport(
            smtpTransportOptions(
              this.server,
              login,
              this.deps.options.smtpTimeouts,
              this.deps.options.proxies,
              this.deps.options.mailAddresses,
            ),
          );
    return this.transport;
  }

  private dropTransport(): void {
    this.transport?.close();
    this.transport = undefined;
    this.login = null;
  }

  private removePending(item: SpoolItem): void {
    this.queued.remove(item);
    this.waiting.forget(item.id);
  }
}

/** Why credentials were unusable (e.g. REAUTH_REQUIRED: a person must sign in again), for the log. */
function reasonOf(err: unknown): unknown {
  return isMailroomError(err, 'CREDENTIALS_UNAVAILABLE') ? err.details?.['reason'] : undefined;
}
