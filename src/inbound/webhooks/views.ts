import { Type, type Static } from '@sinclair/typebox';
import type { WebhookDeliveryRow, WebhookQueueSummary } from '../../store/webhook-deliveries.js';

const DateTime = Type.String({ format: 'date-time' });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const WebhookFailureView = Type.Object({
  seq: Type.Integer(),
  messageId: Type.String(),
  attempts: Type.Integer(),
  /** HTTP status of the failed answer; null when there was none (refused, timed out). */
  status: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.String(),
  at: DateTime,
  /** Set once a later attempt succeeded. */
  deliveredAt: Nullable(DateTime),
});

export const WebhookStatusView = Type.Object({
  destinationId: Type.String(),
  url: Nullable(Type.String()),
  /** disabled: no webhook URL; ok: events flow; failing: the oldest pending event failed too often. */
  state: Type.Union([Type.Literal('disabled'), Type.Literal('ok'), Type.Literal('failing')]),
  pending: Type.Integer(),
  delivered: Type.Integer(),
  lastDeliveredAt: Nullable(DateTime),
  /** The oldest pending event (every later one waits behind it). */
  head: Type.Union([
    Type.Object({ seq: Type.Integer(), attempts: Type.Integer(), nextAttemptAt: DateTime }),
    Type.Null(),
  ]),
  lastError: Nullable(Type.String()),
  lastErrorAt: Nullable(DateTime),
  recentFailures: Type.Array(WebhookFailureView),
});
export type WebhookStatusView = Static<typeof WebhookStatusView>;

export const WebhookTestView = Type.Object({
  ok: Type.Boolean(),
  status: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  durationMs: Type.Integer(),
});
export type WebhookTestView = Static<typeof WebhookTestView>;

export function webhookStatusView(
  destination: { id: string; webhookUrl: string | null },
  summary: WebhookQueueSummary,
  failures: WebhookDeliveryRow[],
  failing: boolean,
): WebhookStatusView {
  const last = failures[0];
  return {
    destinationId: destination.id,
    url: destination.webhookUrl,
    state: destination.webhookUrl === null ? 'disabled' : failing ? 'failing' : 'ok',
    pending: summary.pending,
    delivered: summary.delivered,
    lastDeliveredAt: summary.lastDeliveredAt?.toISOString() ?? null,
    head: summary.head
      ? {
          seq: summary.head.seq,
          attempts: summary.head.attempts,
          nextAttemptAt: summary.head.nextAttemptAt.toISOString(),
        }
      : null,
    lastError: last?.lastError ?? null,
    lastErrorAt: last?.lastErrorAt?.toISOString() ?? null,
    recentFailures: failures.map((f) => ({
      seq: f.seq,
      messageId: f.messageId,
      attempts: f.attempts,
      status: f.lastStatus !== null && (f.lastStatus < 200 || f.lastStatus > 299) ? f.lastStatus : null,
      error: f.lastError ?? '',
      at: (f.lastErrorAt ?? f.createdAt).toISOString(),
      deliveredAt: f.deliveredAt?.toISOString() ?? null,
    })),
  };
}
