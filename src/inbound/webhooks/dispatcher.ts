import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { webhookDeliveries, webhookFailures } from '../../shared/metrics.js';
import type { SecretSealer } from '../../shared/sealed-secrets.js';
import type { DestinationRow, WebhookBatch } from '../../store/rows.js';
import type { Store } from '../../store/store.js';
import { WEBHOOK_SECRET_FIELD, type WebhookRunRow } from '../../store/webhook-deliveries.js';
import {
  batchKeyOf,
  routedEventsOf,
  type MessageRoutedBatch,
  type MessageRoutedEvent,
  type WebhookTestEvent,
} from './event.js';
import type { PostOutcome, WebhookPoster } from './http-post.js';
import type { WebhookOptions } from './options.js';
import { retryDelayMs } from './retry-schedule.js';
import { EVENT_HEADER, IDEMPOTENCY_HEADER, signPayload, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.js';

/** [5000] ms a run's lease outlives its last POST's timeout, for the outcomes to be recorded. */
const LEASE_MARGIN_MS = 5_000;
/** [25] ms between two outbox reads at the least, so a row another engine holds cannot spin this one. */
const MIN_WAIT_MS = 25;

export interface WebhookDispatcherDeps {
  store: Store;
  sealer: SecretSealer;
  logger: Logger;
  options: WebhookOptions;
  clock: Clock;
  poster: WebhookPoster;
  /** Jitter source in [0, 1). */
  random?: () => number;
}

const succeeded = (o: PostOutcome): boolean => o.status !== null && o.status >= 200 && o.status <= 299;

function describe(o: PostOutcome): string {
  return o.status === null ? o.error : `HTTP ${o.status}`;
}

/** Outbox rows of one destination (whose lease the run holds) and their events, by seq. */
interface Chunk {
  rows: WebhookRunRow[];
  events: Map<number, MessageRoutedEvent>;
}

/** One destination's run as it goes: where it posts, and its outcomes not yet recorded. */
interface Run {
  head: WebhookRunRow;
  url: string;
  secret: string;
  batch: WebhookBatch | null;
  /** clock time after which the run makes no new POST. */
  budgetEnd: number;
  delivered: Delivered[];
  /** The last record of 2xx answers, made while the next POSTs go out; never rejects. */
  recording: Promise<boolean>;
  /** The last record is still being made (the answers since wait for it to end, and go in the next). */
  recordBusy: boolean;
  /** A record failed: the database is away, and the run ends. */
  recordFailed: boolean;
  failed?: { row: WebhookRunRow; outcome: PostOutcome; at: Date };
  ended: boolean;
}

/** A 2xx answer, waiting to be recorded with others of its run. */
interface Delivered {
  seq: number;
  at: Date;
  status: number;
}

/**
 * Posts the webhook outbox. Each destination's events go out as a pipeline: a run leases the
 * destination (one row, not one per event) and reads its pending events `runLength` at a time,
 * POSTed one after the other
 * in `seq` order over a kept-alive connection (each waits for the answer to the one before, so a
 * receiver never has a later event before an earlier one succeeded), and the 2xx answers are
 * recorded `flushEvery` at a time while the next POSTs go out. The first failure ends the run:
 * it is recorded with its retry time and the destination is given back, the rest waiting behind it.
 * At least once: an outcome lost to a crash or an outage is posted again with the same
 * `Idempotency-Key` once the run's lease has lapsed. Up to `maxInFlight` destinations at once.
 *
 * Wakes on `wake()` (a message was routed, here or on another instance) and when a run ends, and
 * reads the outbox every `pollIntervalMs` anyway (retries falling due, lapsed leases).
 */
export class WebhookDispatcher {
  private readonly log: Logger;
  /** The run under way per destination id. */
  private readonly runs = new Map<string, Promise<void>>();
  private timer: unknown;
  private immediate: NodeJS.Immediate | undefined;
  private passing: Promise<void> | undefined;
  /** A wake came while a pass was under way: another pass follows it at once. */
  private woken = false;
  private started = false;
  private stopping: Promise<void> | undefined;

  constructor(private readonly deps: WebhookDispatcherDeps) {
    this.log = deps.logger.child({ component: 'webhooks' });
  }

  start(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    this.wake();
  }

  /**
   * Reads the outbox as soon as the current pass (if any) is over: after a commit that routed
   * messages, and when a run ends. Wakes never cancel one another, and never wait for the poll.
   */
  wake(): void {
    if (!this.started || this.stopping) return;
    this.woken = true;
    if (this.passing || this.immediate) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.tick();
    });
  }

  /** Stops claiming, lets each run finish the POST it is making, records outcomes. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.deps.clock.clearTimeout(this.timer);
      if (this.immediate) clearImmediate(this.immediate);
      this.immediate = undefined;
      await this.passing;
      await Promise.all([...this.runs.values()]);
    })();
    return this.stopping;
  }

  /** POSTs a signed `webhook.test` event to the destination's URL now; nothing is stored. */
  async sendTest(destination: DestinationRow): Promise<{ outcome: PostOutcome; durationMs: number }> {
    const event: WebhookTestEvent = {
      type: 'webhook.test',
      id: `${destination.id}:test:${this.deps.clock.now()}`,
      tenantId: destination.tenantId,
      destinationId: destination.id,
    };
    const started = this.deps.clock.now();
    const secret = this.secretOf(destination);
    const outcome =
      secret === null
        ? ({ status: null, error: 'the destination has no webhook' } as const)
        : await this.post(destination.webhookUrl as string, secret, event.id, event.type, JSON.stringify(event));
    return { outcome, durationMs: Math.max(0, this.deps.clock.now() - started) };
  }

  private schedule(ms: number): void {
    const { clock } = this.deps;
    clock.clearTimeout(this.timer);
    this.timer = clock.setTimeout(() => this.wake(), ms);
  }

  private tick(): void {
    if (this.stopping || this.passing) return;
    this.woken = false;
    this.passing = this.pass()
      .catch((err: unknown) => {
        this.log.error({ err }, 'reading the webhook outbox failed; retrying');
        // Not at once: the poll tries again (a database outage must not spin this loop).
        this.woken = false;
        this.schedule(this.deps.options.pollIntervalMs);
      })
      .finally(() => {
        this.passing = undefined;
        if (this.woken) this.wake();
      });
  }

  private async pass(): Promise<void> {
    const { store, clock, options } = this.deps;
    const share = options.maxInFlightPerTenant;
    // `maxInFlight` slots for everyone, and `share` more above them that only a tenant under its
    // share may take: one tenant may use every slot while nobody else waits, and a tenant whose
    // mail comes meanwhile still starts at once, without waiting for a run to end.
    const free = options.maxInFlight - this.runs.size;
    const headroom = free + share;
    // Full: each run's end wakes the dispatcher; the poll stays as the safety net.
    if (headroom <= 0) return this.schedule(options.pollIntervalMs);
    const now = clock.now();
    const budgetEnd = now + options.runBudgetMs;
    const leaseUntil = new Date(budgetEnd + options.requestTimeoutMs + LEASE_MARGIN_MS);
    // Round-robin over tenants, each up to its share (counting its runs on every instance).
    const runs = await store.webhooks.claimRuns(new Date(now), leaseUntil, headroom, options.runLength, share);
    // Slots the shares left free go to tenants with more due (work-conserving).
    const spare = free - runs.length;
    if (spare > 0 && !this.stopping) {
      runs.push(
        ...(await store.webhooks.claimRuns(new Date(now), leaseUntil, spare, options.runLength, options.maxInFlight)),
      );
    }
    for (const run of runs) this.track(run, leaseUntil, budgetEnd);
    if (this.stopping) return;
    if (this.runs.size >= options.maxInFlight) return this.schedule(options.pollIntervalMs);
    const due = await store.webhooks.nextDueAt();
    const wait = due === null ? options.pollIntervalMs : due.getTime() - clock.now();
    this.schedule(Math.min(options.pollIntervalMs, Math.max(MIN_WAIT_MS, wait)));
  }

  private track(run: WebhookRunRow[], leaseUntil: Date, budgetEnd: number): void {
    const head = run[0] as WebhookRunRow;
    const running = this.deliver(run, leaseUntil, budgetEnd).then(
      () => undefined,
      (err: unknown) => {
        // The leases lapse and the events are posted again (at least once).
        this.log.error(
          { err, tenantId: head.tenantId, destinationId: head.destinationId },
          'webhook run failed; its events are posted again once its lease lapses',
        );
      },
    );
    this.runs.set(head.destinationId, running);
    void running.finally(() => {
      this.runs.delete(head.destinationId);
      this.wake();
    });
  }

  /**
   * Posts one claimed run in order until it ends, fails, runs out of time or the engine stops.
   * While a full chunk goes out, the next one (the destination's following pending events) is
   * read, so the receiver never waits on the database between two chunks. A batching destination
   * (`webhookBatch`) reads chunks of whole batches (as many as fit in `runLength`) and POSTs each
   * batch as one; a batch shorter than `maxEvents` goes only once its first event is due (it has
   * waited `maxWaitMs`, or is a retry), else the run ends there.
   */
  private async deliver(first: WebhookRunRow[], leaseUntil: Date, budgetEnd: number): Promise<void> {
    const { store } = this.deps;
    const head = first[0] as WebhookRunRow;
    const { tenantId, destinationId } = head;
    const destination = await store.destinations.get(tenantId, destinationId);
    const secret = destination ? this.secretOf(destination) : null;
    if (!destination?.webhookUrl || secret === null) {
      // The webhook was removed after the claim: the rows wait for a new URL.
      await store.webhooks.releaseRun(destinationId, leaseUntil);
      return;
    }
    const run: Run = {
      head,
      url: destination.webhookUrl,
      secret,
      batch: destination.webhookBatch,
      budgetEnd,
      delivered: [],
      recording: Promise.resolve(true),
      recordBusy: false,
      recordFailed: false,
      ended: false,
    };
    const { runLength } = this.deps.options;
    // As the store reads a run's first chunk (RUN_LIMIT): whole batches.
    const chunkSize = run.batch
      ? run.batch.maxEvents * Math.max(1, Math.floor(runLength / run.batch.maxEvents))
      : runLength;
    let chunk: Chunk | null = { rows: first, events: await routedEventsOf(store, first) };
    while (chunk) {
      const { rows }: Chunk = chunk;
      const last = rows[rows.length - 1] as WebhookRunRow;
      // Never rejects: null when there is no more, or the database failed (the run ends there).
      const next: Promise<Chunk | null> | null =
        rows.length >= chunkSize ? this.nextChunk(head, last.seq, leaseUntil, chunkSize) : null;
      const posted = run.batch ? await this.postBatch(run, chunk) : await this.postEach(run, chunk);
      // The database is away: the lease lapses and all that was not recorded goes again.
      if (posted === null) return;
      if (posted < rows.length) run.ended = true;
      chunk = next ? await next : null;
      if (run.ended) chunk = null;
    }
    // The database is away: the lease lapses and all that was not recorded goes again.
    if (!(await run.recording)) return;
    if (!(await this.record(head, run.delivered))) return;
    if (run.failed) await this.recordFailure(run.failed.row, run.failed.outcome, run.failed.at, destination.name);
    // What was read and not posted waits for the next run, which the end of this one wakes.
    await store.webhooks.releaseRun(destinationId, leaseUntil);
  }

  /** Whether the run may make another POST now. */
  private mayPost(run: Run): boolean {
    return !run.ended && !this.stopping && this.deps.clock.now() < run.budgetEnd;
  }

  /**
   * POSTs a chunk's events one by one; each POST's body and signature are made while the one
   * before is on the wire. The number of rows settled, or null when the database is away.
   */
  private async postEach(run: Run, { rows, events }: Chunk): Promise<number | null> {
    let posted = 0;
    let ready = this.signed(run.secret, events.get((rows[0] as WebhookRunRow).seq));
    for (let i = 0; i < rows.length && this.mayPost(run); i += 1) {
      const row = rows[i] as WebhookRunRow;
      const request = ready;
      const following = rows[i + 1];
      let outcome: PostOutcome;
      if (request) {
        const answer = this.send(run.url, request);
        // The request is written on the next tick (when the agent hands it its socket).
        await writtenOut();
        ready = following && this.signed(run.secret, events.get(following.seq));
        outcome = await answer;
      } else {
        outcome = { status: null, error: 'the message is no longer stored' };
        ready = following && this.signed(run.secret, events.get(following.seq));
      }
      posted += 1;
      if (!this.settle(run, [row], outcome)) return null;
    }
    return posted;
  }

  /**
   * POSTs a chunk as batches of `maxEvents` rows; a shorter last batch only if its first event is
   * due (else it waits, and the run ends). As `postEach`.
   */
  private async postBatch(run: Run, { rows, events }: Chunk): Promise<number | null> {
    const size = (run.batch as WebhookBatch).maxEvents;
    let posted = 0;
    for (let from = 0; from < rows.length && this.mayPost(run); from += size) {
      const slice = rows.slice(from, from + size);
      const head = slice[0] as WebhookRunRow;
      if (slice.length < size && !head.due) break;
      const last = slice[slice.length - 1] as WebhookRunRow;
      const included = slice.flatMap((r) => events.get(r.seq) ?? []);
      let outcome: PostOutcome;
      if (included.length === 0) {
        outcome = { status: null, error: 'the message is no longer stored' };
      } else {
        const batch: MessageRoutedBatch = {
          type: 'message.routed.batch',
          id: batchKeyOf(head.destinationId, head.seq, last.seq),
          tenantId: head.tenantId,
          destinationId: head.destinationId,
          events: included,
        };
        outcome = await this.send(run.url, this.sign(run.secret, batch.id, batch.type, JSON.stringify(batch)));
      }
      posted += slice.length;
      if (!this.settle(run, slice, outcome)) return null;
    }
    return posted;
  }

  /**
   * Takes a POST's outcome for its rows: a 2xx is recorded with others (at least `flushEvery` at
   * a time, while the next POSTs go out: the POSTs never wait for a record; answers that come
   * while one is being made go in the next), a failure ends the run (recorded on the first row,
   * which the others wait behind). False when the database is away.
   */
  private settle(run: Run, rows: readonly WebhookRunRow[], outcome: PostOutcome): boolean {
    if (run.recordFailed) return false;
    const at = new Date(this.deps.clock.now());
    if (!succeeded(outcome)) {
      run.failed = { row: rows[0] as WebhookRunRow, outcome, at };
      run.ended = true;
      return true;
    }
    for (const row of rows) run.delivered.push({ seq: row.seq, at, status: outcome.status as number });
    if (run.delivered.length >= this.deps.options.flushEvery && !run.recordBusy) {
      run.recordBusy = true;
      run.recording = this.record(run.head, run.delivered.splice(0)).then((ok) => {
        run.recordBusy = false;
        run.recordFailed ||= !ok;
        return ok;
      });
    }
    return true;
  }

  /** The destination's next pending rows after `afterSeq` (the run holds the destination); null when none or on failure. */
  private async nextChunk(
    head: WebhookRunRow,
    afterSeq: number,
    leaseUntil: Date,
    limit: number,
  ): Promise<Chunk | null> {
    const { store } = this.deps;
    try {
      const now = new Date(this.deps.clock.now());
      const rows = await store.webhooks.extendRun(head.destinationId, afterSeq, leaseUntil, limit, now);
      if (rows.length === 0) return null;
      return { rows, events: await routedEventsOf(store, rows) };
    } catch (err) {
      // The run ends after the rows it has; the next run reads the rest.
      this.log.warn(
        { err, tenantId: head.tenantId, destinationId: head.destinationId },
        'the next webhook events could not be read; the run ends here',
      );
      return null;
    }
  }

  /** Records 2xx answers; false (logged) when the database refused, which ends the run. */
  private async record(head: WebhookRunRow, delivered: Delivered[]): Promise<boolean> {
    if (delivered.length === 0) return true;
    try {
      await this.deps.store.webhooks.recordSuccesses(head.destinationId, delivered);
      webhookDeliveries.inc({ tenant_id: head.tenantId, destination_id: head.destinationId }, delivered.length);
      return true;
    } catch (err) {
      this.log.error(
        { err, tenantId: head.tenantId, destinationId: head.destinationId, events: delivered.length },
        'webhook outcomes could not be recorded; those events are posted again once the lease lapses',
      );
      return false;
    }
  }

  private async recordFailure(
    row: WebhookRunRow,
    outcome: PostOutcome,
    at: Date,
    destinationName: string,
  ): Promise<void> {
    const { store, options } = this.deps;
    const attempts = row.attempts + 1;
    const delay = retryDelayMs(attempts, options, this.deps.random);
    const error = describe(outcome);
    await store.webhooks.recordFailure(row.destinationId, row.seq, {
      at,
      status: outcome.status,
      error,
      nextAttemptAt: new Date(at.getTime() + delay),
    });
    webhookFailures.inc({ tenant_id: row.tenantId, destination_id: row.destinationId });
    // Names as well as ids, for a person reading the log (a failure is rare: one read is cheap).
    const tenant = await store.tenants.get(row.tenantId).catch(() => null);
    this.log.warn(
      {
        tenantId: row.tenantId,
        ...(tenant && { tenantName: tenant.name }),
        destinationId: row.destinationId,
        destinationName,
        seq: row.seq,
        attempts,
        status: outcome.status,
        error,
        retryInMs: delay,
      },
      'webhook POST failed; will retry',
    );
  }

  private secretOf(destination: DestinationRow): string | null {
    if (!destination.webhookUrl || !destination.webhookSecretSealed) return null;
    return this.deps.sealer.open(destination.webhookSecretSealed, {
      tenantId: destination.tenantId,
      rowId: destination.id,
      field: WEBHOOK_SECRET_FIELD,
    });
  }

  private post(url: string, secret: string, key: string, type: string, body: string): Promise<PostOutcome> {
    return this.send(url, this.sign(secret, key, type, body));
  }

  /** The signed request of a routed event; undefined when its message is no longer stored. */
  private signed(secret: string, event: MessageRoutedEvent | undefined): SignedRequest | undefined {
    return event && this.sign(secret, event.id, event.type, JSON.stringify(event));
  }

  private sign(secret: string, key: string, type: string, body: string): SignedRequest {
    const timestamp = Math.floor(this.deps.clock.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Mailroom-Webhooks/1',
      [EVENT_HEADER]: type,
      [IDEMPOTENCY_HEADER]: key,
      [TIMESTAMP_HEADER]: String(timestamp),
      [SIGNATURE_HEADER]: signPayload(secret, timestamp, body),
    };
    return { headers, body };
  }

  /** Never rejects: a poster that throws is a POST with no answer (retried like one). */
  private send(url: string, request: SignedRequest): Promise<PostOutcome> {
    const { options, poster } = this.deps;
    return poster(url, request.headers, request.body, options.requestTimeoutMs).catch((err: unknown): PostOutcome => {
      this.log.error({ err }, 'the webhook poster failed');
      return { status: null, error: 'internal error' };
    });
  }
}

/** A POST ready to go: its body and headers, signed. */
interface SignedRequest {
  headers: Record<string, string>;
  body: string;
}

/** Resolves once the ticks queued so far (a request's write among them) have run. */
function writtenOut(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}
