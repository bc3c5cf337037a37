import type { Store } from '../../store/store.js';
import type { WebhookDeliveryRow } from '../../store/webhook-deliveries.js';
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

export interface WebhookTestEvent {
  type: 'webhook.test';
  id: string;
  tenantId: string;
  destinationId: string;
}

export function idempotencyKeyOf(destinationId: string, seq: number): string {
  return `${destinationId}:${seq}`;
}

/** The event of an outbox row; null when the message or its delivery is gone (deleted since). */
export async function routedEventOf(store: Store, row: WebhookDeliveryRow): Promise<MessageRoutedEvent | null> {
  const [delivery, message] = await Promise.all([
    store.deliveries.get(row.destinationId, row.messageId),
    store.messages.get(row.tenantId, row.messageId),
  ]);
  if (!delivery || !message) return null;
  return {
    type: 'message.routed',
    id: idempotencyKeyOf(row.destinationId, row.seq),
    seq: row.seq,
    tenantId: row.tenantId,
    destinationId: row.destinationId,
    message: feedItemView(delivery, message),
  };
}
