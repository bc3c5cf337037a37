/** Things a test run started and must stop at its end, whatever happened. */
const first: Array<() => Promise<void>> = [];
const last: Array<() => Promise<void>> = [];

/** Registers a cleanup for the end of the run; 'first' ones run before the others (close before drop). */
export function addCleanup(fn: () => Promise<void>, order: 'first' | 'last' = 'last'): void {
  (order === 'first' ? first : last).push(fn);
}

export async function runCleanups(): Promise<void> {
  for (const list of [first, last]) {
    while (list.length > 0) {
      const fn = list.pop() as () => Promise<void>;
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`cleanup failed: ${(err as Error).message}\n`);
      }
    }
  }
}
