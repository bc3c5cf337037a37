import pg from 'pg';
import type { Logger } from '../shared/logger.js';

/**
 * Signals between the instances that share one database (PostgreSQL `LISTEN`/`NOTIFY`): small
 * payloads, delivered after the publishing statement commits, to every listening session, the
 * publisher's own too. Not a queue: a listener that is disconnected misses what was published
 * meanwhile, and is told so (`onResubscribed`) so that it can read the database once instead.
 */
export interface Notifications {
  /** Publishes on `channel` (at most ~8,000 bytes: PostgreSQL's limit). Rejects when the database does. */
  publish(channel: string, payload: string): Promise<void>;
  /**
   * Calls `onMessage` with every payload published on `channel` from now on, and
   * `onResubscribed` after a lost listening connection was made again (payloads may have been
   * missed). Answers the unsubscribe function.
   */
  subscribe(channel: string, onMessage: (payload: string) => void, onResubscribed?: () => void): () => void;
  close(): Promise<void>;
}

/** The embedded database has one process: there is no other instance to signal. */
export const noNotifications: Notifications = {
  publish: () => Promise.resolve(),
  subscribe: () => () => undefined,
  close: () => Promise.resolve(),
};

/** [1000] first delay before the listening connection is made again, ms (doubling to 30 s). */
const RECONNECT_MIN_MS = 1_000;
/** [30000] longest delay between two attempts to listen again, ms. */
const RECONNECT_MAX_MS = 30_000;

interface Subscription {
  onMessage: (payload: string) => void;
  onResubscribed: (() => void) | undefined;
}

/**
 * One dedicated connection (outside the pool: a pooled connection would lose its LISTENs when
 * handed back) that listens to the channels subscribed to, made again with backoff whenever it
 * is lost; publishing goes through `publishQuery` (the pool). Nothing here ever throws into the
 * event loop: a lost connection is logged and retried.
 */
export class PostgresNotifications implements Notifications {
  private readonly channels = new Map<string, Set<Subscription>>();
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delayMs = RECONNECT_MIN_MS;
  private closed = false;
  /** Whether a connection was ever made (a later one is a resubscription). */
  private everConnected = false;

  constructor(
    private readonly connectionString: string,
    private readonly publishQuery: (sql: string, params: unknown[]) => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  async publish(channel: string, payload: string): Promise<void> {
    await this.publishQuery('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  subscribe(channel: string, onMessage: (payload: string) => void, onResubscribed?: () => void): () => void {
    const subscription: Subscription = { onMessage, onResubscribed };
    let set = this.channels.get(channel);
    const fresh = !set;
    if (!set) {
      set = new Set();
      this.channels.set(channel, set);
    }
    set.add(subscription);
    if (!this.client && !this.connecting) this.connect();
    else if (fresh && this.client) this.listen(this.client, channel);
    return () => {
      set.delete(subscription);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.connecting;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private connect(): void {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.connectionString, application_name: 'mailroom-listen' });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('the listening connection ended')));
    client.on('notification', (n) => {
      const subscriptions = this.channels.get(n.channel);
      if (!subscriptions || n.payload === undefined) return;
      for (const s of subscriptions) s.onMessage(n.payload);
    });
    this.connecting = (async () => {
      try {
        await client.connect();
        for (const channel of this.channels.keys()) await client.query(`LISTEN ${quoteIdentifier(channel)}`);
        if (this.closed) {
          await client.end().catch(() => undefined);
          return;
        }
        this.client = client;
        this.delayMs = RECONNECT_MIN_MS;
        if (this.everConnected) {
          this.logger.info('listening to the other instances again');
          for (const set of this.channels.values()) for (const s of set) s.onResubscribed?.();
        }
        this.everConnected = true;
      } catch (err) {
        this.lost(client, err);
      } finally {
        this.connecting = undefined;
      }
    })();
  }

  private listen(client: pg.Client, channel: string): void {
    client.query(`LISTEN ${quoteIdentifier(channel)}`).catch((err: unknown) => this.lost(client, err));
  }

  private lost(client: pg.Client, err: unknown): void {
    if (this.client === client) this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.closed || this.timer) return;
    this.logger.warn(
      { err, retryInMs: this.delayMs },
      'the connection listening to the other instances was lost; trying again',
    );
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.client && !this.connecting) this.connect();
    }, this.delayMs);
    this.timer.unref();
    this.delayMs = Math.min(RECONNECT_MAX_MS, this.delayMs * 2);
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
