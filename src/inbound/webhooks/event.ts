import type { Store } from '../../store/store.js';
import type { WebhookRunRow } from '../../store/webhook-deliveries.js';
import { feedItemView, type FeedItemView } from '../views.js';

/** The JSON body of a webhook POST. `id` is also the `Idempotency-Key`: the same for every retry. */
export interface MessageRoutedEvent {
  type: 'message.routed';
  id: string;
  seq: number;
  tenantId: string;
  destinationId: string;
  message: FeedItemView;
}

/**
 * The JSON body of a batched webhook POST (`webhookBatch`): consecutive events of one destination
 * in `seq` order. `id` (also the `Idempotency-Key`) names the first and last `seq`; a retry may
 * carry more events than the POST it repeats, so receivers deduplicate by each event's own `id`.
 */
export interface MessageRoutedBatch {
  type: 'message.routed.batch';
  id: string;
  tenantId: string;
  destinationId: string;
  events: MessageRoutedEvent[];
}

export interface WebhookTestEvent {
  type: 'webhook.test';
  id: string;
  tenantId: string;
  destinationId: string;
}

export function idempotencyKeyOf(destinationId: string, seq: number): string {
  return `${destinationId}:${seq}`;
}

export function batchKeyOf(destinationId: string, firstSeq: number, lastSeq: number): string {
  return `${destinationId}:${firstSeq}-${lastSeq}`;
}

/**
 * The events of a run of one destination's outbox rows, by `seq`, read in one statement. A row whose message or delivery is gone (deleted since) has
 * no event.
 */
export async function routedEventsOf(
  store: Store,
  run: ReadonlyArray<Pick<WebhookRunRow, 'destinationId' | 'tenantId' | 'seq'>>,
): Promise<Map<number, MessageRoutedEvent>> {
  const events = new Map<number, MessageRoutedEvent>();
  const first = run[0];
  if (!first) return events;
  const rows = await store.deliveries.feedRows(
    first.destinationId,
    run.map((r) => r.seq),
  );
  for (const { delivery, message } of rows) {
    events.set(delivery.seq, {
      type: 'message.routed',
      id: idempotencyKeyOf(first.destinationId, delivery.seq),
      seq: delivery.seq,
      tenantId: first.tenantId,
      destinationId: first.destinationId,
      message: feedItemView(delivery, message),
    });
  }
  return events;
}
