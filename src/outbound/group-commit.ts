/**
 * Group commit (as PostgreSQL does for WAL flushes and Haraka for its queue): callers hand in
 * items, and each gets a promise that settles once the write holding its item is done, with what
 * that write returned (the same value for the whole batch). The first item is written at once;
 * items that arrive while a write runs share the next one. A failed write rejects the callers of
 * that batch only. With `delayMs`, a write waits that long after its first item so that more join
 * it (for writes nobody waits on in a hurry). With `expectMore` as well, it waits only when that
 * says more items are on their way (as PostgreSQL's commit_delay waits only with commit_siblings
 * active): a lone item is written at once.
 */
export class GroupCommit<T, R = void> {
  private waiting: Array<{ item: T; resolve: (result: R) => void; reject: (err: unknown) => void }> = [];
  private running = false;

  /**
   * @param write writes a batch in one go (one statement, one transaction)
   * @param maxBatch [500] most items in one write
   * @param delayMs [0] how long a write waits for more items after its first one, ms
   * @param expectMore [always] whether items not yet added are on their way, given how many wait
   *   (asked before each wait)
   */
  constructor(
    private readonly write: (items: T[]) => Promise<R>,
    private readonly maxBatch = 500,
    private readonly delayMs = 0,
    private readonly expectMore: (waiting: number) => boolean = () => true,
  ) {}

  /** Resolves once `item` is written, with the result of the write that held it. */
  add(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.running) {
        this.running = true;
        // Items added in the same tick (or within delayMs) join the first write.
        queueMicrotask(() => void this.run());
      }
    });
  }

  private async run(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        await this.gather();
        const batch = this.waiting.splice(0, this.maxBatch);
        try {
          const result = await this.write(batch.map((b) => b.item));
          for (const b of batch) b.resolve(result);
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Waits `delayMs` for more items, unless the batch is full or no more are expected. */
  private async gather(): Promise<void> {
    if (this.delayMs > 0 && this.waiting.length < this.maxBatch && this.expectMore(this.waiting.length))
      await sleep(this.delayMs);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
