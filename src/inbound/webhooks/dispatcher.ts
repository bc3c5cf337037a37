import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { webhookFailures } from '../../shared/metrics.js';
import type { SecretSealer } from '../../shared/sealed-secrets.js';
import type { DestinationRow } from '../../store/rows.js';
import type { Store } from '../../store/store.js';
import { WEBHOOK_SECRET_FIELD, type WebhookDeliveryRow } from '../../store/webhook-deliveries.js';
import { routedEventOf, type WebhookTestEvent } from './event.js';
import type { PostOutcome, WebhookPoster } from './http-post.js';
import type { WebhookOptions } from './options.js';
import { retryDelayMs } from './retry-schedule.js';
import { EVENT_HEADER, IDEMPOTENCY_HEADER, signPayload, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.js';

/** [5000] ms a lease outlives the request timeout, so a slow answer is never posted twice at once. */
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
  if (o.status === null) return o.error;
  const snippet = o.bodySnippet.replace(/\s+/g, ' ').trim();
  return `HTTP ${o.status}${snippet ? `: ${snippet}` : ''}`;
}

/**
 * Posts the webhook outbox: each destination's events one at a time in `seq` order (at least
 * once; receivers dedupe by `Idempotency-Key`), signed, retried with backoff until a 2xx. Wakes on
 * `wake()` (a message was routed) and reads the outbox every `pollIntervalMs` anyway.
 */
export class WebhookDispatcher {
  private readonly log: Logger;
  private readonly inFlight = new Set<Promise<void>>();
  private timer: unknown;
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;
  private stopping: Promise<void> | undefined;

  constructor(private readonly deps: WebhookDispatcherDeps) {
    this.log = deps.logger.child({ component: 'webhooks' });
  }

  start(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    this.schedule(0);
  }

  /** Reads the outbox soon (called after a commit that routed messages). */
  wake(): void {
    if (this.started && !this.stopping) this.schedule(0);
  }

  /** Stops reading the outbox and waits for the POSTs in flight. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.deps.clock.clearTimeout(this.timer);
      await this.running?.catch(() => undefined);
      await Promise.allSettled([...this.inFlight]);
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
    const outcome = await this.post(destination, event.id, event.type, JSON.stringify(event));
    return { outcome, durationMs: Math.max(0, this.deps.clock.now() - started) };
  }

  private schedule(ms: number): void {
    const { clock } = this.deps;
    clock.clearTimeout(this.timer);
    this.timer = clock.setTimeout(() => this.tick(), ms);
  }

  private tick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((err: unknown) => {
        this.log.error({ err }, 'reading the webhook outbox failed; retrying');
        this.schedule(this.deps.options.pollIntervalMs);
      })
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopping) {
          this.again = false;
          this.schedule(0);
        }
      });
  }

  private async pass(): Promise<void> {
    const { store, clock, options } = this.deps;
    const free = options.maxInFlight - this.inFlight.size;
    if (free > 0) {
      const now = clock.now();
      const lease = new Date(now + options.requestTimeoutMs + LEASE_MARGIN_MS);
      for (const row of await store.webhooks.claimDue(new Date(now), lease, free)) this.track(this.attempt(row));
    }
    if (this.stopping) return;
    const due = free > 0 ? await store.webhooks.nextDueAt() : null;
    const wait = due === null ? options.pollIntervalMs : due.getTime() - clock.now();
    this.schedule(Math.min(options.pollIntervalMs, Math.max(MIN_WAIT_MS, wait)));
  }

  private track(attempt: Promise<void>): void {
    this.inFlight.add(attempt);
    void attempt.finally(() => {
      this.inFlight.delete(attempt);
      this.wake();
    });
  }

  private async attempt(row: WebhookDeliveryRow): Promise<void> {
    const { store, clock, options } = this.deps;
    const log = this.log.child({ tenantId: row.tenantId, destinationId: row.destinationId, seq: row.seq });
    let outcome: PostOutcome;
    try {
      const destination = await store.destinations.get(row.tenantId, row.destinationId);
      // The webhook was removed after the claim: the lease runs out, the row waits for a new URL.
      if (!destination?.webhookUrl) return;
      const event = await routedEventOf(store, row);
      if (!event) {
        outcome = { status: null, error: 'the message is no longer stored' };
      } else {
        outcome = await this.post(destination, event.id, event.type, JSON.stringify(event));
      }
    } catch (err) {
      log.error({ err }, 'webhook event could not be prepared');
      outcome = { status: null, error: `internal error: ${err instanceof Error ? err.message : String(err)}` };
    }
    const at = new Date(clock.now());
    const attempts = row.attempts + 1;
    try {
      if (succeeded(outcome)) {
        await store.webhooks.recordSuccess(row.destinationId, row.seq, at, outcome.status as number);
        log.debug({ attempts, status: outcome.status }, 'webhook delivered');
        return;
      }
      const delay = retryDelayMs(attempts, options, this.deps.random);
      const error = describe(outcome);
      await store.webhooks.recordFailure(row.destinationId, row.seq, {
        at,
        status: outcome.status,
        error,
        nextAttemptAt: new Date(at.getTime() + delay),
      });
      webhookFailures.inc({ tenant_id: row.tenantId, destination_id: row.destinationId });
      log.warn({ attempts, status: outcome.status, error, retryInMs: delay }, 'webhook POST failed; will retry');
    } catch (err) {
      // The outcome is lost; the lease runs out and the event is posted again (at least once).
      log.error({ err }, 'webhook outcome could not be recorded');
    }
  }

  private post(destination: DestinationRow, key: string, type: string, body: string): Promise<PostOutcome> {
    const { sealer, clock, options, poster } = this.deps;
    if (!destination.webhookUrl || !destination.webhookSecretSealed) {
      return Promise.resolve({ status: null, error: 'the destination has no webhook' });
    }
    const secret = sealer.open(destination.webhookSecretSealed, {
      tenantId: destination.tenantId,
      rowId: destination.id,
      field: WEBHOOK_SECRET_FIELD,
    });
    const timestamp = Math.floor(clock.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Mailroom-Webhooks/1',
      [EVENT_HEADER]: type,
      [IDEMPOTENCY_HEADER]: key,
      [TIMESTAMP_HEADER]: String(timestamp),
      [SIGNATURE_HEADER]: signPayload(secret, timestamp, body),
    };
    return poster(destination.webhookUrl, headers, body, options.requestTimeoutMs);
  }
}
