/** A hold on part of a {@link ByteBudget}. */
export interface ByteHold {
  /** Bytes held now. */
  readonly bytes: number;
  /** Gives back what is held beyond `bytes` (once the real size is known); never grows. */
  shrinkTo(bytes: number): void;
  /** Gives everything back. Idempotent. */
  release(): void;
}

/**
 * Bytes that many users may hold at once, in all (memory for fetched message sources across
 * every mailbox being synchronised): `acquire(n)` resolves once `n` bytes fit. Waiters are served
 * first come, first served, so a large request is not starved by a stream of small ones; a
 * request larger than the whole budget goes once nothing else is held.
 */
export class ByteBudget {
  private held = 0;
  private highest = 0;
  private readonly waiting: Array<{ bytes: number; grant: () => void }> = [];

  /** @param limit bytes that may be held at once, in all */
  constructor(readonly limit: number) {
    if (!(limit > 0)) throw new RangeError(`a byte budget needs a positive limit (got ${limit})`);
  }

  /** Bytes held now. */
  get inUse(): number {
    return this.held;
  }

  /** The most bytes held at any one time so far. */
  get peak(): number {
    return this.highest;
  }

  /** Requests waiting for bytes to be given back. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves with a hold of `bytes` once they fit. */
  acquire(bytes: number): Promise<ByteHold> {
    const wanted = Math.max(0, Math.ceil(bytes));
    return new Promise((resolve) => {
      const grant = (): void => {
        this.held += wanted;
        this.highest = Math.max(this.highest, this.held);
        resolve(this.hold(wanted));
      };
      if (this.waiting.length === 0 && this.fits(wanted)) grant();
      else this.waiting.push({ bytes: wanted, grant });
    });
  }

  private fits(bytes: number): boolean {
    return this.held === 0 || this.held + bytes <= this.limit;
  }

  private hold(initial: number): ByteHold {
    let bytes = initial;
    const give = (amount: number): void => {
      if (amount <= 0) return;
      bytes -= amount;
      this.held -= amount;
      this.serve();
    };
    return {
      get bytes() {
        return bytes;
      },
      shrinkTo: (target) => give(bytes - Math.max(0, Math.ceil(target))),
      release: () => give(bytes),
    };
  }

  private serve(): void {
    for (let next = this.waiting[0]; next && this.fits(next.bytes); next = this.waiting[0]) {
      this.waiting.shift();
      next.grant();
    }
  }
}
