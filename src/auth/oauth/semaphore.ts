/** At most `size` holders at a time in this process; the others wait in arrival order. */
export class Semaphore {
  private holders = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.holders >= this.size) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.holders += 1;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next)
        next(); // the slot passes straight to the next waiter
      else this.holders -= 1;
    }
  }
}
