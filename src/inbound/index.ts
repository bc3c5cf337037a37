import type { CredentialService } from '../auth/credentials.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { ConnectionTestResult } from '../shared/connection-test.js';
import { noNotifications, type Notifications } from '../store/notifications.js';
import type { Store } from '../store/store.js';
import { InboundService } from './inbound-service.js';
import { HeldMail } from './held-mail.js';
import { MessageFeed } from './message-feed.js';
import { ParsePool } from './message/parse-pool.js';
import { RoutedSignals } from './routed-signals.js';
import type { InboundOptions } from './options.js';
import type { WatcherStatus } from './server-watcher.js';

export type { InboundOptions } from './options.js';
export type { WatcherStatus } from './server-watcher.js';
export type { RoutedListener, RoutedSignals } from './routed-signals.js';

/** The inbound side as the composition root sees it. */
export interface Inbound {
  service: InboundService;
  feed: MessageFeed;
  /** Unrouted and quarantined mail an operator acts on. */
  held: HeldMail;
  /** Messages routed here or on another instance: wakes long polls, event streams and webhooks. */
  signals: RoutedSignals;
  status(serverId: string): WatcherStatus;
  /** "Test connection", IMAP side (connect, log in, log out). */
  testConnection(tenantId: string, serverId: string): Promise<ConnectionTestResult>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createInbound(deps: {
  store: Store;
  credentials: CredentialService;
  logger: Logger;
  options?: Partial<InboundOptions>;
  /** [2] parser worker threads. */
  parserThreads?: number;
  onHeartbeat?: (event: { serverId: string; token: string; receivedAt: Date }) => void;
  /** Which servers this instance watches (its leases); all enabled ones without it. */
  owns?: (serverId: string) => boolean;
  /** Signals to and from the other instances (`store.notifications()`); none without it. */
  notifications?: Notifications;
  /** This instance's id in its announcements (so that it ignores its own). */
  instanceId?: string;
  /** [the system clock] the timers of reconciles, polls and reconnects (a test's fake clock). */
  clock?: Clock;
}): Inbound {
  const parser = new ParsePool({ size: deps.parserThreads ?? 2, limits: deps.options?.parseLimits });
  const service = new InboundService({
    store: deps.store,
    credentials: deps.credentials,
    parser,
    logger: deps.logger,
    options: deps.options,
    ...(deps.onHeartbeat && { onHeartbeat: deps.onHeartbeat }),
    ...(deps.owns && { owns: deps.owns }),
    ...(deps.clock && { clock: deps.clock }),
  });
  const signals = new RoutedSignals(deps.notifications ?? noNotifications, deps.logger, {
    instanceId: deps.instanceId,
    latestSeqs: (destinationIds) => deps.store.deliveries.latestSeqs(destinationIds),
  });
  service.events.on('routed', (event) => signals.routed(event.destinationIds));
  const feed = new MessageFeed(deps.store, parser, signals);
  const held = new HeldMail(deps.store, parser, signals, deps.options?.messageIdDomain);
  return {
    service,
    feed,
    held,
    signals,
    status: (serverId) => service.status(serverId),
    testConnection: (tenantId, serverId) => service.testConnection(tenantId, serverId),
    // The parse workers start when a message first needs one (small messages parse in place):
    // starting them here would cost every start-up a second of CPU, taken from the first sync.
    start: () => {
      signals.start();
      return service.start();
    },
    async stop() {
      await service.stop();
      signals.stop();
      await parser.close();
    },
  };
}
