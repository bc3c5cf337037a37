import { EventEmitter } from 'node:events';
import type { CredentialService } from '../auth/credentials.js';
import { ByteBudget } from '../shared/byte-budget.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { ConnectionTestResult } from '../shared/connection-test.js';
import type { Logger } from '../shared/logger.js';
import type { EmailServerRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { ConnectGate } from './connect-gate.js';
import { MailboxSync, type RoutedEvent } from './mailbox-sync.js';
import type { MessageParser } from './message-record.js';
import { DEFAULT_INBOUND_OPTIONS, type InboundOptions } from './options.js';
import { testImapConnection } from './connection-test.js';
import { idleStatus, ServerWatcher, type WatcherStatus } from './server-watcher.js';
import { testGraphConnection } from './graph-connect.js';
import { GraphMailboxSync } from './graph-sync.js';
import { GraphWatcher } from './graph-watcher.js';
import { DEFAULT_DELTA_PAGE_SIZE } from '../shared/graph/graph-client.js';

export interface InboundDeps {
  store: Store;
  credentials: CredentialService;
  parser: MessageParser;
  logger: Logger;
  options?: Partial<InboundOptions>;
  /**
   * Whether this instance watches a server (it holds the server's lease, see `src/cluster`);
   * without it every enabled server is watched.
   */
  owns?: (serverId: string) => boolean;
  /** A heartbeat token arrived in a watched mailbox (the outbound side measures the round trip). */
  onHeartbeat?: (event: { serverId: string; token: string; receivedAt: Date }) => void;
  /** [the system clock] the timers of the reconcile and of each watcher's polls and reconnects. */
  clock?: Clock;
}

/**
 * The inbound side: one watcher per enabled e-mail server, kept in line with the database
 * (servers added, changed, disabled or deleted are picked up on the next reconcile).
 */
export class InboundService {
  /** 'routed' fires after each commit that delivered a message to destinations. */
  readonly events = new EventEmitter<{ routed: [RoutedEvent] }>();
  readonly options: InboundOptions;
  private readonly watchers = new Map<string, { watcher: ServerWatcher | GraphWatcher; version: number }>();
  /** Memory for fetched message sources, shared by every mailbox pass of this engine. */
  readonly fetchBudget: ByteBudget;
  private readonly sync: MailboxSync;
  /** Microsoft Graph servers' passes (delta queries), storing through `sync`. */
  private readonly graphSync: GraphMailboxSync;
  private readonly connectGate: ConnectGate;
  private timer: unknown;
  private readonly clock: Clock;
  private reconciling: Promise<void> | undefined;
  private reconcileQueued: Promise<void> | undefined;
  /** The server list's fingerprint at the last full reconcile. */
  private appliedFingerprint: string | undefined;
  private stopped = false;

  constructor(private readonly deps: InboundDeps) {
    this.options = { ...DEFAULT_INBOUND_OPTIONS, ...deps.options };
    this.clock = deps.clock ?? systemClock;
    this.events.setMaxListeners(0);
    this.connectGate = new ConnectGate(this.options.connectLimits);
    this.fetchBudget = new ByteBudget(this.options.fetchMemoryBytes);
    this.sync = new MailboxSync({
      store: deps.store,
      fetchBudget: this.fetchBudget,
      parser: deps.parser,
      logger: deps.logger,
      options: this.options,
      onRouted: (event) => this.events.emit('routed', event),
      ...(deps.onHeartbeat && { onHeartbeat: deps.onHeartbeat }),
    });
    this.graphSync = new GraphMailboxSync({
      store: deps.store,
      sync: this.sync,
      batchMaxCount: this.options.batchMaxCount,
      maxMessageBytes: this.options.parseLimits.maxBytes,
      pageSize: DEFAULT_DELTA_PAGE_SIZE,
    });
  }

  async start(): Promise<void> {
    await this.reconcile();
    const tick = (): void => {
      this.timer = this.clock.setTimeout(() => {
        this.reconcile({ ifChanged: true })
          .catch((err: unknown) => this.deps.logger.error({ err }, 'reconcile failed'))
          .finally(() => {
            if (!this.stopped) tick();
          });
      }, this.options.reconcileIntervalMs);
    };
    tick();
  }

  /**
   * Starts watchers for new or changed enabled servers, stops those removed, disabled or no longer
   * owned. Runs one at a time; a call during a run gets the next run (which sees its change).
   */
  reconcile(options: { ifChanged?: boolean } = {}): Promise<void> {
    // Servers this instance no longer holds are let go at once, not after a run that may be
    // waiting on an unreachable database (which is when leases lapse).
    if (!this.stopped) {
      this.releaseUnowned().catch((err: unknown) => this.deps.logger.warn({ err }, 'stopping a watcher failed'));
    }
    if (this.reconcileQueued) return this.reconcileQueued;
    const run = (): Promise<void> => {
      this.reconciling = this.doReconcile(options.ifChanged === true).finally(() => (this.reconciling = undefined));
      return this.reconciling;
    };
    if (!this.reconciling) return run();
    this.reconcileQueued = this.reconciling
      .catch(() => undefined)
      .then(() => {
        this.reconcileQueued = undefined;
        return run();
      });
    return this.reconcileQueued;
  }

  private async doReconcile(ifChanged: boolean): Promise<void> {
    if (this.stopped) return;
    const owns = this.deps.owns ?? (() => true);
    await this.releaseUnowned();
    // The periodic check reads one row when no server changed (a thousand servers stay cheap at rest).
    const fingerprint = await this.deps.store.servers.fingerprint();
    if (ifChanged && fingerprint === this.appliedFingerprint) return;
    const servers = await this.deps.store.servers.listAll();
    const tenantNames = await this.deps.store.tenants.names();
    const wanted = new Map<string, EmailServerRow>(
      servers.filter((s) => s.enabled && owns(s.id)).map((s) => [s.id, s]),
    );
    await this.stopWatchers((id, version) => wanted.get(id)?.updatedAt.getTime() !== version);
    for (const [id, row] of wanted) {
      // owns() again: a lease may have lapsed while the servers were read.
      if (this.watchers.has(id) || this.stopped || !owns(id)) continue;
      const watcher =
        row.protocol === 'graph'
          ? new GraphWatcher(row, {
              credentials: this.deps.credentials,
              sync: this.graphSync,
              logger: this.deps.logger,
              options: this.options,
              tenantName: tenantNames.get(row.tenantId),
            })
          : new ServerWatcher(row, {
              credentials: this.deps.credentials,
              sync: this.sync,
              logger: this.deps.logger,
              clock: this.clock,
              options: this.options,
              connectGate: this.connectGate,
              tenantName: tenantNames.get(row.tenantId),
            });
      this.watchers.set(id, { watcher, version: row.updatedAt.getTime() });
      watcher.start();
    }
    this.appliedFingerprint = fingerprint;
  }

  /**
   * Stops the watchers of servers this instance no longer holds, without the database: when
   * leases lapse because it cannot be reached, they must not go on beside the new owner's.
   */
  private releaseUnowned(): Promise<void> {
    const owns = this.deps.owns;
    return owns ? this.stopWatchers((id) => !owns(id)) : Promise.resolve();
  }

  /** Stops (and forgets) the watchers of the servers `which` picks, by id and settings version. */
  private async stopWatchers(which: (id: string, version: number) => boolean): Promise<void> {
    const stopping: Array<Promise<void>> = [];
    for (const [id, entry] of this.watchers) {
      if (!which(id, entry.version)) continue;
      this.watchers.delete(id);
      stopping.push(entry.watcher.stop());
    }
    await Promise.all(stopping);
  }

  /**
   * "Test connection", IMAP side: connects to the server as its settings say, logs in and logs out
   * (whether or not it is enabled or watched here); the outcome in plain words.
   */
  async testConnection(tenantId: string, serverId: string): Promise<ConnectionTestResult> {
    const server = await this.deps.store.servers.require(tenantId, serverId);
    if (server.protocol === 'graph') {
      return testGraphConnection(server, {
        credentials: this.deps.credentials,
        proxies: this.options.proxies,
        mailAddresses: this.options.mailAddresses,
        maxSourceBytes: this.options.parseLimits.maxBytes,
      });
    }
    return testImapConnection(server, {
      ...this.deps,
      proxies: this.options.proxies,
      mailAddresses: this.options.mailAddresses,
    });
  }

  /** The watcher's status; `disabled` for a server that is not watched. */
  status(serverId: string): WatcherStatus {
    const entry = this.watchers.get(serverId);
    if (entry) return entry.watcher.snapshot();
    return idleStatus('disabled');
  }

  /** Asks a server's watcher to sync now. */
  poke(serverId: string): void {
    this.watchers.get(serverId)?.watcher.poke();
  }

  /** A server's credentials were renewed (an OAuth 2.0 sign-in completed): its watcher retries now. */
  credentialsRenewed(serverId: string): void {
    this.watchers.get(serverId)?.watcher.credentialsRenewed();
  }

  /** Stops every watcher (each finishes the message in hand and logs out). Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    await this.reconciling?.catch(() => undefined);
    const all = [...this.watchers.values()];
    this.watchers.clear();
    await Promise.all(all.map((e) => e.watcher.stop()));
  }
}
