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
  /**
   * disabled: no webhook URL; ok: events flow; retrying: the oldest pending event failed at least
   * once and is being retried (the receiver may be down); failing: it failed too often
   * (`failingAfterAttempts`, 8: retries now every 15 minutes).
   */
  state: Type.Union([Type.Literal('disabled'), Type.Literal('ok'), Type.Literal('retrying'), Type.Literal('failing')]),
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

/** Reason phrases worth naming; other statuses are named by their class. */
const STATUS_WORDS: Record<number, string> = {
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not found',
  408: 'request timeout',
  413: 'payload too large',
  429: 'too many requests',
  502: 'bad gateway',
  503: 'service unavailable',
  504: 'gateway timeout',
};

/** An answer that was not a 2xx as tenants see it: its status and what kind of answer that is. */
export function describeStatus(status: number): string {
  const words =
    STATUS_WORDS[status] ??
    (status >= 500 && status <= 599
      ? 'server error'
      : status >= 400 && status <= 499
        ? 'client error'
        : status >= 300 && status <= 399
          ? 'redirect, not followed'
          : status >= 200 && status <= 299
            ? 'success'
            : 'unexpected status');
  return `HTTP ${status} (${words})`;
}

/**
 * A stored failure as tenants see it. Earlier versions kept the first 200 characters of the
 * receiver's answer after the status (`HTTP 500: <body>`): those rows show the status alone too.
 */
export function shownError(stored: string): string {
  const status = statusNamedIn(stored);
  return status === null ? stored : describeStatus(status);
}

/** The HTTP status a stored failure starts with (`HTTP 500…`), or null (refused, timed out). */
function statusNamedIn(stored: string): number | null {
  const status = /^HTTP (\d{3})(?=$|[:\s])/.exec(stored);
  return status ? Number(status[1]) : null;
}

/**
 * The status of a row's last failure: its last answer while it failed, or (once a later attempt
 * was delivered and the row's status is that 2xx) the status its stored error names; null when the
 * failure had no answer (refused, timed out).
 */
function failedStatus(row: WebhookDeliveryRow): number | null {
  if (row.lastStatus !== null && (row.lastStatus < 200 || row.lastStatus > 299)) return row.lastStatus;
  return statusNamedIn(row.lastError ?? '');
}

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
    state:
      destination.webhookUrl === null
        ? 'disabled'
        : failing
          ? 'failing'
          : summary.head !== null && summary.head.attempts > 0
            ? 'retrying'
            : 'ok',
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
    lastError: last?.lastError == null ? null : shownError(last.lastError),
    lastErrorAt: last?.lastErrorAt?.toISOString() ?? null,
    recentFailures: failures.map((f) => ({
      seq: f.seq,
      messageId: f.messageId,
      attempts: f.attempts,
      status: failedStatus(f),
      error: shownError(f.lastError ?? ''),
      at: (f.lastErrorAt ?? f.createdAt).toISOString(),
      deliveredAt: f.deliveredAt?.toISOString() ?? null,
    })),
  };
}
