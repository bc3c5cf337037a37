import type { CredentialService } from '../auth/credentials.js';
import { backoffDelay } from '../shared/backoff.js';
import { isMailroomError } from '../shared/errors.js';
import { GraphError } from '../shared/graph/graph-client.js';
import { serverLogFields, type Logger } from '../shared/logger.js';
import { imapReconnects } from '../shared/metrics.js';
import type { EmailServerRow } from '../store/rows.js';
import { connectGraph, describeGraphError } from './graph-connect.js';
import type { GraphMailboxSync } from './graph-sync.js';
import type { InboundOptions } from './options.js';
import { idleStatus, type WatcherStatus } from './server-watcher.js';

export interface GraphWatcherDeps {
  credentials: CredentialService;
  sync: GraphMailboxSync;
  logger: Logger;
  options: InboundOptions;
  tenantName?: string | undefined;
}

/**
 * Watches one Microsoft Graph mailbox by polling: a delta pass over each watched folder every
 * `pollIntervalMs` (MAILROOM_IMAP_POLL_INTERVAL_MS), or at once when poked. Change notifications
 * (webhooks from Graph) need the engine reachable from Microsoft 365; polling needs nothing and
 * is what this part of issue 27 does. Errors never leave this object: a refused token gets one
 * quick retry with a fresh one, a 429 waits at least its `Retry-After`, anything else backs off.
 * Its status has the shape of an IMAP watcher's (`polling`; `lastUid` counts the messages stored).
 */
export class GraphWatcher {
  private stopped = false;
  private forceRefresh = false;
  private renewed = false;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private readonly log: Logger;
  private readonly status: WatcherStatus = idleStatus('connecting');

  constructor(
    readonly server: EmailServerRow,
    private readonly deps: GraphWatcherDeps,
  ) {
    this.log = deps.logger.child({
      ...serverLogFields(server, deps.tenantName),
      component: 'inbound',
      protocol: 'graph',
    });
  }

  snapshot(): WatcherStatus {
    return { ...this.status, lastUid: { ...this.status.lastUid }, newMail: { ...this.status.newMail } };
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Stops polling: a pass in progress ends after the batch it is storing. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    this.status.state = 'stopped';
    clearTimeout(this.timer);
    this.wake?.();
    await this.running;
  }

  /** A pass now (or right after the one in progress). */
  poke(): void {
    this.dirty = true;
    if (this.status.nextAttemptAt === null) this.wakeUp();
  }

  credentialsRenewed(): void {
    if (this.status.nextAttemptAt === null || this.stopped) return;
    this.renewed = true;
    this.wakeUp();
  }

  private wakeUp(): void {
    clearTimeout(this.timer);
    this.wake?.();
  }

  private async loop(): Promise<void> {
    const { options } = this.deps;
    let attempt = 0;
    while (!this.stopped) {
      try {
        this.dirty = false;
        await this.pass();
        attempt = 0;
        this.status.state = 'polling';
        this.status.newMail = { by: 'poll', pollIntervalMs: options.pollIntervalMs };
        if (this.status.lastError !== null) {
          this.status.lastError = null;
          this.status.lastErrorAt = null;
          this.status.lastProblemEndedAt = new Date().toISOString();
        }
        if (!this.dirty) await this.sleep(options.pollIntervalMs);
      } catch (err) {
        if (this.stopped) break;
        attempt += 1;
        const unauthorized = err instanceof GraphError && err.unauthorized;
        const auth = unauthorized || isMailroomError(err, 'CREDENTIALS_UNAVAILABLE');
        this.fail(auth ? 'authError' : 'connectError', err);
        imapReconnects.inc({
          tenant_id: this.server.tenantId,
          server_id: this.server.id,
          reason: auth ? 'auth' : 'connect',
        });
        // A refused token: one quick retry with a fresh one first.
        const refreshFirst = unauthorized && !this.forceRefresh;
        this.forceRefresh = refreshFirst;
        let delay = refreshFirst
          ? options.reconnectMinMs
          : auth
            ? backoffDelay(attempt, { minMs: options.authRetryMinMs, maxMs: options.authRetryMaxMs })
            : backoffDelay(attempt, { minMs: options.reconnectMinMs, maxMs: options.reconnectMaxMs });
        // Throttled: never sooner than Graph asks (https://learn.microsoft.com/graph/throttling).
        if (err instanceof GraphError && err.retryAfterMs !== null) delay = Math.max(delay, err.retryAfterMs);
        this.status.nextAttemptAt = new Date(Date.now() + delay).toISOString();
        await this.sleep(delay);
        this.status.nextAttemptAt = null;
        if (this.renewed) {
          this.renewed = false;
          this.forceRefresh = false;
          attempt = 0;
        }
        if (!this.stopped) this.status.reconnects += 1;
      }
    }
  }

  /** One pass over every watched folder, with a client (and an access token) of its own. */
  private async pass(): Promise<void> {
    const { options } = this.deps;
    const client = await connectGraph(
      this.server,
      {
        credentials: this.deps.credentials,
        proxies: options.proxies,
        mailAddresses: options.mailAddresses,
        maxSourceBytes: options.parseLimits.maxBytes,
      },
      this.forceRefresh,
    );
    this.forceRefresh = false;
    for (const mailbox of options.mailboxes) {
      if (this.stopped) return;
      const result = await this.deps.sync.run(client, this.server, mailbox, this.stopping.signal, this.log);
      this.status.lastUid[mailbox] = (this.status.lastUid[mailbox] ?? 0) + result.lastUid;
      this.status.lastContactAt = new Date().toISOString();
    }
  }

  private fail(state: 'authError' | 'connectError', err: unknown): void {
    this.status.state = state;
    this.status.lastError = describeGraphError(err);
    this.status.lastErrorAt = new Date().toISOString();
    this.status.lastProblemEndedAt = null;
    this.log.warn({ state, error: this.status.lastError }, 'mailbox connection failed');
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.timer = setTimeout(resolve, ms);
      this.wake = resolve;
    });
  }
}
