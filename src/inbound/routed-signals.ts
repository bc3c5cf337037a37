import { randomUUID } from 'node:crypto';
import type { Logger } from '../shared/logger.js';
import type { Notifications } from '../store/notifications.js';

/** The channel instances announce routed messages on: `{"i": instanceId, "d": [destinationId, …]}`. */
const CHANNEL = 'mailroom_routed';
/** [7000] bytes of destination ids in one announcement (PostgreSQL allows 8,000 a payload). */
const MAX_PAYLOAD_BYTES = 7_000;

/** [30000] how often waits are checked against the database in case a signal was missed, ms. */
const SAFETY_INTERVAL_MS = 30_000;

/** Called with the destinations that got messages; null when any may have (signals were missed). */
export type RoutedListener = (destinationIds: readonly string[] | null) => void;

/**
 * A wait on one destination's feed, opened before the feed is read so that a message routed
 * between the read and the wait is not missed.
 */
export interface FeedWatch {
  /** The last `seq` the waiter has: the safety check wakes it when the destination has a later one. */
  cursor: number;
  /**
   * Resolves `signal` when a message was routed to the destination since the last `next()` (or
   * since the watch was opened), `timeout` after `ms`, `abort` when `abort` fires.
   */
  next(ms: number, abort: AbortSignal): Promise<'signal' | 'timeout' | 'abort'>;
  close(): void;
}

interface Watcher {
  cursor: number;
  changed: boolean;
  wake: ((why: 'signal' | 'timeout' | 'abort') => void) | undefined;
}

export interface RoutedSignalsOptions {
  /** This instance's id in its announcements (so that it ignores its own). */
  instanceId?: string | undefined;
  /**
   * The latest `seq` of each of these destinations: read once per safety interval for all the
   * destinations waited on (one statement, however many waits), to wake the waits a lost
   * signal left asleep.
   */
  latestSeqs?: ((destinationIds: string[]) => Promise<Map<string, number>>) | undefined;
  /** [30000] ms between two safety checks while anything waits. */
  safetyIntervalMs?: number | undefined;
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
  private safetyTimer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    private readonly notifications: Notifications,
    private readonly logger: Logger,
    private readonly options: RoutedSignalsOptions = {},
  ) {
    this.instanceId = options.instanceId ?? randomUUID();
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
    clearInterval(this.safetyTimer);
    this.safetyTimer = undefined;
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

  watch(destinationId: string, cursor: number): FeedWatch {
    const watcher: Watcher = { cursor, changed: false, wake: undefined };
    let set = this.watchers.get(destinationId);
    if (!set) {
      set = new Set();
      this.watchers.set(destinationId, set);
    }
    set.add(watcher);
    this.armSafetyCheck();
    const watchers = this.watchers;
    return {
      get cursor() {
        return watcher.cursor;
      },
      set cursor(value: number) {
        watcher.cursor = value;
      },
      next(ms, abort) {
        if (abort.aborted) return Promise.resolve('abort');
        if (watcher.changed) {
          watcher.changed = false;
          return Promise.resolve('signal');
        }
        return new Promise((resolve) => {
          const done = (why: 'signal' | 'timeout' | 'abort'): void => {
            clearTimeout(timer);
            abort.removeEventListener('abort', onAbort);
            watcher.wake = undefined;
            watcher.changed = false;
            resolve(why);
          };
          const onAbort = (): void => done('abort');
          const timer = setTimeout(() => done('timeout'), ms);
          abort.addEventListener('abort', onAbort);
          watcher.wake = done;
        });
      },
      close() {
        watcher.wake?.('abort');
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
    watcher.wake?.('signal');
  }

  /** Runs the safety check every interval while anything waits (and only then). */
  private armSafetyCheck(): void {
    if (this.safetyTimer || !this.options.latestSeqs) return;
    this.safetyTimer = setInterval(() => {
      if (this.watchers.size === 0) {
        clearInterval(this.safetyTimer);
        this.safetyTimer = undefined;
        return;
      }
      void this.safetyCheck();
    }, this.options.safetyIntervalMs ?? SAFETY_INTERVAL_MS);
    this.safetyTimer.unref();
  }

  private async safetyCheck(): Promise<void> {
    const latestSeqs = this.options.latestSeqs;
    if (this.checking || !latestSeqs) return;
    this.checking = true;
    try {
      const latest = await latestSeqs([...this.watchers.keys()]);
      for (const [destinationId, seq] of latest) {
        for (const w of this.watchers.get(destinationId) ?? []) if (w.cursor < seq) this.wakeOne(w);
      }
    } catch (err) {
      this.logger.warn({ err }, 'the safety check of waiting long polls failed; trying again later');
    } finally {
      this.checking = false;
    }
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
