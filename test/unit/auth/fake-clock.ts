import type { Clock } from '../../../src/shared/clock.js';

interface Timer {
  id: number;
  at: number;
  delay: number;
  fn: () => void;
}

/** A clock that moves only when the test says so; timers fire in order during `advance`. */
export class FakeClock implements Clock {
  private time = Date.parse('2026-11-20T10:00:00Z');
  private nextId = 1;
  private timers: Timer[] = [];

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { id: this.nextId++, at: this.time + ms, delay: ms, fn };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Delays of the timers waiting now, in order of firing. */
  get pending(): number[] {
    return [...this.timers].sort((a, b) => a.at - b.at).map((t) => t.delay);
  }

  /** Waits (in real time, briefly) until some timer is set; returns its delay. */
  async nextTimer(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.timers.length === 0) {
      if (Date.now() > deadline) throw new Error('no timer was set in time');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return this.pending[0] as number;
  }

  /** Moves time forward, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = [...this.timers].sort((a, b) => a.at - b.at)[0];
      if (!due || due.at > until) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.fn();
    }
    this.time = until;
  }

  /** Fires the next timer, moving time to it; returns the delay it had. */
  async fireNext(): Promise<number> {
    const delay = await this.nextTimer();
    const due = [...this.timers].sort((a, b) => a.at - b.at)[0] as Timer;
    this.advance(due.at - this.time);
    return delay;
  }
}
