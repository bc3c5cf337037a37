/**
 * Reconnect delays: exponential with full jitter, capped. Only computes; the caller owns the timer.
 */
export interface BackoffOptions {
  /** [1000] first delay, ms. */
  minMs?: number;
  /** [300000] largest delay, ms. */
  maxMs?: number;
  /** [2] growth per attempt. */
  factor?: number;
  /** random source in [0, 1), injectable for tests. */
  random?: () => number;
}

/** Delay before attempt `attempt` (1-based): between half and all of min·factor^(attempt-1), capped at max. */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const min = options.minMs ?? 1000;
  const max = options.maxMs ?? 300_000;
  const factor = options.factor ?? 2;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(max, min * factor ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
