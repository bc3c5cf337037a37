import type { OutboundRequestRecord } from '../store/outbound-requests.js';
import { WITHDRAWN_OUTCOME } from '../store/outbound-requests.js';
import type { OutboundMessageRow } from '../store/rows.js';
import type { DeadLetterView, OutboundView, RecipientOutcomeView, RequestView } from './schemas.js';

/** Every recipient of a message and what became of it, from the row alone. */
export function recipientOutcomes(row: OutboundMessageRow): RecipientOutcomeView[] {
  const refused = new Map((row.refusedRecipients ?? []).map((r) => [r.address.toLowerCase(), r]));
  const accepted = new Map((row.acceptedRecipients ?? []).map((r) => [r.address.toLowerCase(), r]));
  return row.recipients.map((address): RecipientOutcomeView => {
    const refusal = refused.get(address.toLowerCase());
    if (refusal) {
      return { address, outcome: 'refused', reply: refusal.reply, responseCode: refusal.responseCode, at: refusal.at };
    }
    const taken = accepted.get(address.toLowerCase());
    if (taken) return { address, outcome: 'sent', reply: taken.reply, responseCode: codeOf(taken.reply), at: taken.at };
    if (row.status === 'sent') {
      return {
        address,
        outcome: 'sent',
        reply: row.lastReply,
        responseCode: row.lastResponseCode,
        at: row.sentAt ? row.sentAt.toISOString() : null,
      };
    }
    if (row.status === 'failed') {
      return {
        address,
        outcome: 'failed',
        reply: row.lastReply,
        responseCode: row.lastResponseCode,
        at: (row.deadLetteredAt ?? row.updatedAt).toISOString(),
      };
    }
    return { address, outcome: 'pending', reply: null, responseCode: null, at: null };
  });
}

/** The reply code at the start of an SMTP reply ("250 2.0.0 OK"), or null. */
function codeOf(reply: string): number | null {
  const code = Number.parseInt(reply, 10);
  return code >= 200 && code < 600 ? code : null;
}

/** What the API shows of outgoing messages, dead letters and requests left for other instances. */

export function deadLetterView(row: OutboundMessageRow): DeadLetterView {
  return {
    id: row.id,
    serverId: row.serverId,
    destinationId: row.destinationId,
    subject: row.subject,
    recipients: row.recipients,
    reply: row.lastReply,
    responseCode: row.lastResponseCode,
    attempts: row.attempts,
    failedAt: row.deadLetteredAt ? row.deadLetteredAt.toISOString() : null,
    instanceId: row.instanceId,
    refusedRecipients: row.refusedRecipients ?? [],
    recipientOutcomes: recipientOutcomes(row),
  };
}

/** What the account's queue says about a message still to be sent (see OutboundView.waitingFor). */
export interface QueueWaits {
  state: string;
  resumeAt: string | null;
  rateLimitedUntil: string | null;
}

/** Why a message waits and until when, from its row and its queue's state (null: not known here). */
export function waitingOf(
  row: Pick<OutboundMessageRow, 'status' | 'nextAttemptAt'>,
  queue: QueueWaits | null,
  now: number,
): Pick<OutboundView, 'waitingFor' | 'waitingUntil'> {
  const none = { waitingFor: null, waitingUntil: null };
  if (row.status !== 'queued' && row.status !== 'deferred') return none;
  if (queue?.state === 'paused') return { waitingFor: 'relay', waitingUntil: queue.resumeAt };
  if (queue?.state === 'held') return { waitingFor: 'credentials', waitingUntil: queue.resumeAt };
  if (row.nextAttemptAt && row.nextAttemptAt.getTime() > now) {
    return { waitingFor: 'retry', waitingUntil: row.nextAttemptAt.toISOString() };
  }
  if (queue?.rateLimitedUntil) return { waitingFor: 'rate-limit', waitingUntil: queue.rateLimitedUntil };
  return none;
}

export function outboundView(
  row: OutboundMessageRow,
  waits: Pick<OutboundView, 'waitingFor' | 'waitingUntil'> = { waitingFor: null, waitingUntil: null },
): OutboundView {
  return {
    id: row.id,
    destinationId: row.destinationId,
    serverId: row.serverId,
    // Sent, but not to every recipient: an administrator must see it.
    status: row.status === 'sent' && (row.refusedRecipients?.length ?? 0) > 0 ? 'partially-sent' : row.status,
    messageId: row.messageIdHeader,
    conversationId: row.conversationId,
    subject: row.subject,
    recipients: row.recipients,
    attempts: row.attempts,
    lastReply: row.lastReply,
    lastResponseCode: row.lastResponseCode,
    nextAttemptAt: row.nextAttemptAt ? row.nextAttemptAt.toISOString() : null,
    createdAt: row.createdAt.toISOString(),
    sentAt: row.sentAt ? row.sentAt.toISOString() : null,
    refusedRecipients: row.refusedRecipients ?? [],
    recipientOutcomes: recipientOutcomes(row),
    ...waits,
  };
}

export function requestView(r: OutboundRequestRecord, running: ReadonlySet<string>): RequestView {
  const state: RequestView['state'] =
    r.doneAt === null
      ? r.claimedAt === null
        ? 'requested'
        : 'in-progress'
      : r.outcome === 'done'
        ? 'done'
        : r.outcome === WITHDRAWN_OUTCOME
          ? 'withdrawn'
          : 'refused';
  return {
    requestId: r.id,
    id: r.outboundId,
    serverId: r.serverId,
    subject: r.subject,
    action: r.action,
    instanceId: r.instanceId,
    holderRunning: running.has(r.instanceId),
    state,
    outcome: r.outcome,
    requestedAt: r.requestedAt.toISOString(),
    doneAt: r.doneAt ? r.doneAt.toISOString() : null,
  };
}
