import { randomUUID } from 'node:crypto';
import type { Logger } from '../shared/logger.js';
import type { Notifications } from '../store/notifications.js';

/** The channel instances announce routed messages on: `{"i": instanceId, "d": [destinationId, …]}`. */
const CHANNEL = 'mailroom_routed';
/** [7000] bytes of destination ids in one announcement (PostgreSQL allows 8,000 a payload). */
const MAX_PAYLOAD_BYTES = 7_000;

/** Called with the destinations that got messages; null when any may have (signals were missed). */
export type RoutedListener = (destinationIds: readonly string[] | null) => void;

/**
 * A wait on one destination's feed, opened before the feed is read so that a message routed
 * between the read and the wait is not missed.
 */
export interface FeedWatch {
  /**
   * Resolves when a message was routed to the destination since the last `next()` (or since the
   * watch was opened), after `ms`, or when `abort` fires, whichever is first.
   */
  next(ms: number, abort: AbortSignal): Promise<void>;
  close(): void;
}

interface Watcher {
  changed: boolean;
  wake: (() => void) | undefined;
}

/**
 * Who is told that messages were routed, without reading the database: long polls and event
 * streams waiting on a destination (woken one by one, by destination: a waiter costs nothing
 * while nothing arrives), and the webhook dispatcher. Messages routed here are signalled at once
 * and announced to the other instances (PostgreSQL NOTIFY, one statement per burst, after the
 * commit); their announcements are signalled here. A lost listening connection wakes everyone
 * once (what was missed is read from the database).
 */
export class RoutedSignals {
  readonly instanceId: string;
  private readonly watchers = new Map<string, Set<Watcher>>();
  private readonly listeners = new Set<RoutedListener>();
  /** Destinations routed to since the last announcement. */
  private unannounced = new Set<string>();
  private announcing: NodeJS.Immediate | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly notifications: Notifications,
    private readonly logger: Logger,
    instanceId: string = randomUUID(),
  ) {
    this.instanceId = instanceId;
  }

  /** Listens to the other instances' announcements. */
  start(): void {
    this.unsubscribe ??= this.notifications.subscribe(
      CHANNEL,
      (payload) => this.onAnnouncement(payload),
      () => this.signal(null),
    );
  }

  /** Stops listening; what is still to be announced is announced. */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.announcing) {
      clearImmediate(this.announcing);
      this.announce();
    }
  }

  /** A commit on this instance routed messages to these destinations. */
  routed(destinationIds: readonly string[]): void {
    this.signal(destinationIds);
    for (const id of destinationIds) this.unannounced.add(id);
    this.announcing ??= setImmediate(() => this.announce());
  }

  /** Calls `listener` whenever messages were routed, here or on another instance. */
  subscribe(listener: RoutedListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  watch(destinationId: string): FeedWatch {
    const watcher: Watcher = { changed: false, wake: undefined };
    let set = this.watchers.get(destinationId);
    if (!set) {
      set = new Set();
      this.watchers.set(destinationId, set);
    }
    set.add(watcher);
    const watchers = this.watchers;
    return {
      next(ms, abort) {
        if (watcher.changed || abort.aborted) {
          watcher.changed = false;
          return Promise.resolve();
        }
        return new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            abort.removeEventListener('abort', done);
            watcher.wake = undefined;
            watcher.changed = false;
            resolve();
          };
          const timer = setTimeout(done, ms);
          abort.addEventListener('abort', done);
          watcher.wake = done;
        });
      },
      close() {
        watcher.wake?.();
        const current = watchers.get(destinationId);
        current?.delete(watcher);
        if (current?.size === 0) watchers.delete(destinationId);
      },
    };
  }

  /** Waits open now (long polls and event streams), for metrics and tests. */
  get waiting(): number {
    let n = 0;
    for (const set of this.watchers.values()) n += set.size;
    return n;
  }

  private signal(destinationIds: readonly string[] | null): void {
    if (destinationIds === null) {
      for (const set of this.watchers.values()) for (const w of set) this.wakeOne(w);
    } else {
      for (const id of destinationIds) {
        const set = this.watchers.get(id);
        if (set) for (const w of set) this.wakeOne(w);
      }
    }
    for (const listener of this.listeners) {
      try {
        listener(destinationIds);
      } catch (err) {
        this.logger.error({ err }, 'a routed-message listener failed');
      }
    }
  }

  private wakeOne(watcher: Watcher): void {
    watcher.changed = true;
    watcher.wake?.();
  }

  private announce(): void {
    this.announcing = undefined;
    const ids = [...this.unannounced];
    this.unannounced = new Set();
    let batch: string[] = [];
    let bytes = 0;
    const send = (): void => {
      if (batch.length === 0) return;
      const payload = JSON.stringify({ i: this.instanceId, d: batch });
      batch = [];
      bytes = 0;
      // Best effort: another instance that misses it re-reads within its safety interval.
      this.notifications.publish(CHANNEL, payload).catch((err: unknown) => {
        this.logger.warn({ err }, 'could not tell the other instances about routed messages');
      });
    };
    for (const id of ids) {
      if (bytes + id.length + 3 > MAX_PAYLOAD_BYTES) send();
      batch.push(id);
      bytes += id.length + 3;
    }
    send();
  }

  private onAnnouncement(payload: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    const { i, d } = parsed as { i?: unknown; d?: unknown };
    if (i === this.instanceId || !Array.isArray(d)) return;
    this.signal(d.filter((x): x is string => typeof x === 'string'));
  }
}
