/**
 * Group commit (as PostgreSQL does for WAL flushes and Haraka for its queue): callers hand in
 * items, and each gets a promise that settles once the write holding its item is done. The first
 * item is written at once; items that arrive while a write runs share the next one. A failed
 * write rejects the callers of that batch only.
 */
export class GroupCommit<T> {
  private waiting: Array<{ item: T; resolve: () => void; reject: (err: unknown) => void }> = [];
  private running = false;

  /**
   * @param write writes a batch in one go (one statement, one transaction)
   * @param maxBatch [500] most items in one write
   */
  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    private readonly maxBatch = 500,
  ) {}

  /** Resolves once `item` is written. */
  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.running) {
        this.running = true;
        // Items added in the same tick join the first write.
        queueMicrotask(() => void this.run());
      }
    });
  }

  private async run(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, this.maxBatch);
        try {
          await this.write(batch.map((b) => b.item));
          for (const b of batch) b.resolve();
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
