/** Webhook dispatcher tunables. Every delay is in milliseconds. */
export interface WebhookOptions {
  /** [5000] delay before the first retry; later retries double it (with jitter). */
  retryMinMs: number;
  /** [900000] longest delay between two attempts (15 min): a failing receiver gets one attempt per period. */
  retryMaxMs: number;
  /** [8] attempts after which the destination's webhook shows `failing` and retries run at `retryMaxMs`. */
  failingAfterAttempts: number;
  /** [10000] how long one POST may take, connection included. */
  requestTimeoutMs: number;
  /** [5000] how often the outbox is read even without a `routed` event (other engines, restarts). */
  pollIntervalMs: number;
  /**
   * [16] destinations posted to at once by an instance (one POST in flight each: a destination's
   * events go in order), plus up to `maxInFlightPerTenant` more for tenants under their share.
   */
  maxInFlight: number;
  /**
   * [4] runs one tenant is sure of at once, on all instances together: slots are handed out
   * round-robin over tenants (each tenant's oldest due destination first), this many each. Slots
   * nobody else claims then go to tenants with more due (work-conserving: one tenant may use all
   * `maxInFlight`), and a tenant under its share whose mail comes while every slot is busy starts
   * at once in this many slots above `maxInFlight`: a tenant whose receivers are slow (or many)
   * cannot hold up other tenants' webhooks.
   */
  maxInFlightPerTenant: number;
  /** [256] consecutive pending events of one destination claimed at once (one statement). */
  runLength: number;
  /**
   * [5000] how long one run may go on posting before it gives its destination back, ms. A run's
   * lease lasts this, plus `requestTimeoutMs`, plus 5 s: how long a crashed instance's events
   * wait before another takes them.
   */
  runBudgetMs: number;
  /** [64] 2xx answers recorded in one statement (while the next POSTs go out). */
  flushEvery: number;
}

export const DEFAULT_WEBHOOK_OPTIONS: WebhookOptions = {
  retryMinMs: 5_000,
  retryMaxMs: 900_000,
  failingAfterAttempts: 8,
  requestTimeoutMs: 10_000,
  pollIntervalMs: 5_000,
  maxInFlight: 16,
  maxInFlightPerTenant: 4,
  runLength: 256,
  runBudgetMs: 5_000,
  flushEvery: 64,
};
