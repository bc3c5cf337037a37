import { AddressPolicy } from '../../shared/address-policy.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import { MailroomError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { SecretSealer } from '../../shared/sealed-secrets.js';
import type { WebProxy } from '../../shared/web-proxy.js';
import type { DestinationRow } from '../../store/rows.js';
import type { Store } from '../../store/store.js';
import type { RoutedSignals } from '../routed-signals.js';
import { WebhookDispatcher } from './dispatcher.js';
import { httpPoster, type WebhookPoster } from './http-post.js';
import { DEFAULT_WEBHOOK_OPTIONS, type WebhookOptions } from './options.js';
import { isFailing } from './retry-schedule.js';
import { describeStatus, webhookStatusView, type WebhookStatusView, type WebhookTestView } from './views.js';

export type { WebhookOptions } from './options.js';
export { DEFAULT_WEBHOOK_OPTIONS } from './options.js';

/** [10] failed events listed in a webhook's status. */
const RECENT_FAILURES = 10;

/** Push delivery as the composition root and the API see it. */
export interface Webhooks {
  dispatcher: WebhookDispatcher;
  /** State, queue and recent failures of a destination's webhook (the caller checked the destination exists). */
  status(tenantId: string, destinationId: string): Promise<WebhookStatusView>;
  /** Posts a signed `webhook.test` event now (the caller checked the destination exists). */
  test(tenantId: string, destinationId: string): Promise<WebhookTestView>;
  start(): void;
  stop(): Promise<void>;
}

export function createWebhooks(deps: {
  store: Store;
  sealer: SecretSealer;
  logger: Logger;
  /** Messages routed here or on another instance: each wakes the dispatcher. */
  signals: Pick<RoutedSignals, 'subscribe'>;
  options?: Partial<WebhookOptions>;
  clock?: Clock;
  poster?: WebhookPoster;
  /** The proxy webhooks are posted through (MAILROOM_HTTPS_PROXY); none when absent. */
  proxy?: WebProxy | undefined;
  /** The addresses webhooks may be posted to (MAILROOM_WEBHOOK_ALLOW_PRIVATE); public ones only when absent. */
  addresses?: AddressPolicy | undefined;
}): Webhooks {
  const options = { ...DEFAULT_WEBHOOK_OPTIONS, ...deps.options };
  const dispatcher = new WebhookDispatcher({
    store: deps.store,
    sealer: deps.sealer,
    logger: deps.logger,
    options,
    clock: deps.clock ?? systemClock,
    poster: deps.poster ?? httpPoster({ addresses: deps.addresses ?? AddressPolicy.strict(), proxy: deps.proxy }),
  });
  let unsubscribe: (() => void) | undefined;
  const load = async (tenantId: string, destinationId: string): Promise<DestinationRow> => {
    const row = await deps.store.destinations.get(tenantId, destinationId);
    if (row) return row;
    throw new MailroomError('DESTINATION_NOT_FOUND', `destination ${destinationId} does not exist in this tenant`, {
      details: { destinationId },
    });
  };
  return {
    dispatcher,
    async status(tenantId, destinationId) {
      const destination = await load(tenantId, destinationId);
      const [summary, failures] = await Promise.all([
        deps.store.webhooks.summary(destination.id),
        deps.store.webhooks.recentFailures(destination.id, RECENT_FAILURES),
      ]);
      const failing = summary.head !== null && isFailing(summary.head.attempts, options);
      return webhookStatusView(destination, summary, failures, failing);
    },
    async test(tenantId, destinationId) {
      const { outcome, durationMs } = await dispatcher.sendTest(await load(tenantId, destinationId));
      const ok = outcome.status !== null && outcome.status >= 200 && outcome.status <= 299;
      return {
        ok,
        status: outcome.status,
        error: ok ? null : outcome.status === null ? outcome.error : describeStatus(outcome.status),
        durationMs,
      };
    },
    start() {
      unsubscribe ??= deps.signals.subscribe(() => dispatcher.wake());
      dispatcher.start();
    },
    async stop() {
      unsubscribe?.();
      unsubscribe = undefined;
      await dispatcher.stop();
    },
  };
}
