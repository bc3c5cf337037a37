/**
 * The JSON lines a benchmark prints on stdout (one object per line; see bench/README.md).
 * Progress and diagnostics go to stderr so that stdout stays machine-readable.
 */

/** A measured figure of Mailroom next to the baseline measured in the same run. */
export interface BenchResult {
  bench: string;
  metric: string;
  unit: string;
  /** Mailroom's figure. */
  value: number;
  /** The bare-library figure measured in the same run, same unit. */
  baseline: number;
  /** value / baseline. */
  ratio: number;
  /** value - baseline. */
  delta: number;
  /** The acceptance target as an expression over ratio or delta ("ratio >= 0.8"), or null. */
  target: string | null;
  /** Whether the target is met; null when the line has no target. */
  pass: boolean | null;
  /** Counts and raw timings behind the figure. */
  details?: Record<string, number | string>;
}

export interface BenchSkip {
  bench: string;
  skipped: string;
}

/** A target on the ratio to the baseline, on the difference, or on Mailroom's figure alone. */
export type Target =
  { ratioAtLeast: number } | { ratioAtMost: number } | { deltaAtMost: number } | { valueAtMost: number } | null;

export function emit(line: BenchResult | BenchSkip): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

export function progress(bench: string, message: string): void {
  process.stderr.write(`[${bench}] ${message}\n`);
}

const round = (n: number, digits = 3): number => Number(n.toFixed(digits));

/** Builds a result line and checks the target. */
export function compare(
  bench: string,
  metric: string,
  unit: string,
  value: number,
  baseline: number,
  target: Target,
  details?: Record<string, number | string>,
): BenchResult {
  const ratio = baseline === 0 ? Number.POSITIVE_INFINITY : value / baseline;
  const delta = value - baseline;
  let expression: string | null = null;
  let pass: boolean | null = null;
  if (target && 'ratioAtLeast' in target) {
    expression = `ratio >= ${target.ratioAtLeast}`;
    pass = ratio >= target.ratioAtLeast;
  } else if (target && 'ratioAtMost' in target) {
    expression = `ratio <= ${target.ratioAtMost}`;
    pass = ratio <= target.ratioAtMost;
  } else if (target && 'deltaAtMost' in target) {
    expression = `delta <= ${target.deltaAtMost}`;
    pass = delta <= target.deltaAtMost;
  } else if (target) {
    expression = `value <= ${target.valueAtMost}`;
    pass = value <= target.valueAtMost;
  }
  return {
    bench,
    metric,
    unit,
    value: round(value, 1),
    baseline: round(baseline, 1),
    ratio: round(ratio),
    delta: round(delta, 1),
    target: expression,
    pass,
    ...(details && { details }),
  };
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('percentile of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/** Wake latencies (ms) of Mailroom against a bare server's: the p50 line, and the p99 line with its target (<= 100 ms). */
export function emitWakeLatencies(
  bench: string,
  latencies: readonly number[],
  bareLatencies: readonly number[],
  details: Record<string, number | string>,
): void {
  for (const p of [50, 99] as const) {
    const target = p === 99 ? { valueAtMost: 100 } : null;
    emit(compare(bench, `wake-p${p}`, 'ms', percentile(latencies, p), percentile(bareLatencies, p), target, details));
  }
}
