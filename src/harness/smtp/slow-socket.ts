import type { Socket } from 'node:net';
import type { SlowOptions } from './faults.js';

/** Pending harness timers, so that closing the harness can clear them all. */
export class TimerSet {
  private readonly timers = new Set<NodeJS.Timeout>();

  /** Resolves after `ms` milliseconds, unless `clear()` runs first (then never). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }

  clear(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

/**
 * Routes what smtp-server writes to `socket` through a queue that applies the current
 * slow-down settings (read at each write, so they can change at runtime). Order is kept:
 * a write or `end()` waits for the writes queued before it.
 */
export function slowDownWrites(socket: Socket, slowness: () => SlowOptions | undefined, timers: TimerSet): void {
  const write = socket.write.bind(socket) as (chunk: string | Uint8Array) => boolean;
  const end = socket.end.bind(socket) as () => Socket;
  let queue: Promise<void> = Promise.resolve();
  let queued = 0;

  const enqueue = (step: () => Promise<void>): void => {
    queued += 1;
    queue = queue.then(step).finally(() => {
      queued -= 1;
    });
  };

  const patchedWrite = (chunk: string | Uint8Array): boolean => {
    const options = slowness();
    if (!options && queued === 0) return write(chunk);
    enqueue(async () => {
      if (options?.delayMs) await timers.sleep(options.delayMs);
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
      const trickle = options?.trickle;
      if (!trickle) {
        if (!socket.destroyed) write(bytes);
        return;
      }
      const size = Math.max(1, trickle.chunkBytes);
      for (let offset = 0; offset < bytes.length && !socket.destroyed; offset += size) {
        if (offset > 0) await timers.sleep(trickle.intervalMs);
        if (!socket.destroyed) write(bytes.subarray(offset, offset + size));
      }
    });
    return true;
  };

  const patchedEnd = (): Socket => {
    if (queued === 0) return end();
    enqueue(async () => {
      if (!socket.destroyed) end();
    });
    return socket;
  };

  // smtp-server only calls write(string) and end() on its sockets.
  socket.write = patchedWrite as Socket['write'];
  socket.end = patchedEnd as Socket['end'];
}
