import { backoffDelay } from '../../shared/backoff.js';
import type { WebhookOptions } from './options.js';

type ScheduleOptions = Pick<WebhookOptions, 'retryMinMs' | 'retryMaxMs' | 'failingAfterAttempts'>;

/**
 * Delay before the next POST of an event that has failed `attempts` times (1-based): exponential
 * with jitter up to `failingAfterAttempts`, then a steady `retryMaxMs`. Never "give up": the
 * event stays in the outbox until the receiver answers 2xx. Pure; the caller owns the timer.
 */
export function retryDelayMs(attempts: number, options: ScheduleOptions, random: () => number = Math.random): number {
  if (attempts >= options.failingAfterAttempts) return options.retryMaxMs;
  return backoffDelay(attempts, { minMs: options.retryMinMs, maxMs: options.retryMaxMs, random });
}

/** A destination's webhook is `failing` while its oldest pending event has failed this often. */
export function isFailing(attempts: number, options: Pick<WebhookOptions, 'failingAfterAttempts'>): boolean {
  return attempts >= options.failingAfterAttempts;
}
