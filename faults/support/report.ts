/**
 * The one JSON line each fault run prints on stdout (faults/README.md); progress goes to stderr.
 */

/** What a fault run found. */
export interface FaultResult {
  fault: string;
  /** Messages (or recipients) that were promised and never arrived nor were accounted for. */
  lost: number;
  /** Copies beyond the first. */
  duplicated: number;
  /** Answers of the API by status (and connection errors by code) while the fault was on. */
  errors: Record<string, number>;
  /** From the end of the fault to the engine working again, ms (null when it does not apply). */
  recoveryMs: number | null;
  /** Whether every promise of the run held (0 lost is one of them; see each run's `expect`). */
  pass: boolean;
  /** What the run promises, in words. */
  expect: string;
  details: Record<string, unknown>;
}

export interface FaultSkip {
  fault: string;
  skipped: string;
}

export function emit(line: FaultResult | FaultSkip): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

export function progress(fault: string, message: string): void {
  process.stderr.write(`[${fault}] ${message}\n`);
}

/** Counts of keys ("503 DATABASE_UNAVAILABLE", "ECONNREFUSED"). */
export class Tally {
  private readonly counts = new Map<string, number>();

  add(key: string, n = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  keys(): string[] {
    return [...this.counts.keys()];
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }
}

/** Copies of each key in `arrived` counted against the `promised` set: lost and duplicated. */
export function reconcile(
  promised: Iterable<string>,
  arrived: Iterable<string>,
): { lost: number; duplicated: number; lostKeys: string[] } {
  const copies = new Map<string, number>();
  for (const key of arrived) copies.set(key, (copies.get(key) ?? 0) + 1);
  const lostKeys: string[] = [];
  let duplicated = 0;
  for (const key of promised) {
    const n = copies.get(key) ?? 0;
    if (n === 0) lostKeys.push(key);
    else duplicated += n - 1;
  }
  return { lost: lostKeys.length, duplicated, lostKeys: lostKeys.slice(0, 20) };
}
