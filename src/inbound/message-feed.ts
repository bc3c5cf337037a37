import { setMaxListeners } from 'node:events';
import { actorDetail } from '../store/trace-events.js';
import { MailroomError } from '../shared/errors.js';
import type { DeliveryRow, FeedRow, InboundMessageRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { ExtractedAttachment } from './message/parse.js';
import type { RoutedSignals } from './routed-signals.js';
import { feedItemView, messageDetailView, messageSummaryView, type FeedItemView } from './views.js';

export interface AttachmentExtractor {
  extractAttachment(raw: Buffer, index: number): Promise<ExtractedAttachment | null>;
}

/** [60000] ms an idle event stream's wait is renewed (without reading: only a signal reads). */
const STREAM_IDLE_MS = 60_000;

/**
 * What agents' systems read: each destination's messages in arrival order behind a cursor that
 * never skips or repeats (`seq`), with long polling, and claim/acknowledge so that one agent
 * system takes a message exactly once.
 */
export class MessageFeed {
  /** Aborted by `endWaits()`: long polls answer with what they have (nothing new) at once. */
  private readonly ending = new AbortController();
  /** Feed reads in flight, shared by the waits that ask the same. */
  private readonly reads = new Map<string, Promise<FeedRow[]>>();

  constructor(
    private readonly store: Store,
    private readonly attachments: AttachmentExtractor,
    private readonly signals: RoutedSignals,
  ) {
    // Every long poll and event stream listens to it (thousands at once, by design).
    setMaxListeners(0, this.ending.signal);
  }

  async list(
    tenantId: string,
    destinationId: string,
    after: number,
    limit: number,
    waitMs: number,
    /** Ends the wait early (the client hung up): what was read so far is answered. */
    abort?: AbortSignal,
  ): Promise<{ messages: FeedItemView[]; next: number }> {
    await this.requireDestination(tenantId, destinationId);
    // Watching before the first read: a message routed between the read and the wait wakes it.
    const watch = waitMs > 0 && !this.ending.signal.aborted ? this.signals.watch(destinationId, after) : undefined;
    let rows: FeedRow[];
    try {
      rows = await this.read(destinationId, after, limit);
      if (watch) {
        const stop = abort ? AbortSignal.any([abort, this.ending.signal]) : this.ending.signal;
        const deadline = Date.now() + waitMs;
        while (rows.length === 0) {
          const remaining = deadline - Date.now();
          if (remaining <= 0) break;
          // Only a signal reads again: a wait that times out answers "nothing new" as it is.
          if ((await watch.next(remaining, stop)) !== 'signal') break;
          rows = await this.read(destinationId, after, limit);
        }
      }
    } finally {
      watch?.close();
    }
    const messages = rows.map((r) => feedItemView(r.delivery, r.message));
    return { messages, next: rows.length > 0 ? (rows[rows.length - 1] as FeedRow).delivery.seq : after };
  }

  /**
   * The destination's messages after `after`, in arrival order, as they are routed: batches of
   * up to `batch` as soon as there are any, until `abort` fires or the engine stops. Waiting
   * reads nothing (the signals' safety check reads for all waits at once). The destination is checked first (404).
   */
  async openStream(
    tenantId: string,
    destinationId: string,
    after: number,
    abort: AbortSignal,
    batch = 100,
  ): Promise<AsyncGenerator<FeedItemView[]>> {
    await this.requireDestination(tenantId, destinationId);
    return this.stream(destinationId, after, abort, batch);
  }

  private async *stream(
    destinationId: string,
    after: number,
    abort: AbortSignal,
    batch: number,
  ): AsyncGenerator<FeedItemView[]> {
    const stop = AbortSignal.any([abort, this.ending.signal]);
    const watch = this.signals.watch(destinationId, after);
    try {
      while (!stop.aborted) {
        const rows = await this.read(destinationId, watch.cursor, batch);
        if (rows.length > 0) {
          watch.cursor = (rows[rows.length - 1] as FeedRow).delivery.seq;
          yield rows.map((r) => feedItemView(r.delivery, r.message));
          continue;
        }
        let why: 'signal' | 'timeout' | 'abort';
        do why = await watch.next(STREAM_IDLE_MS, stop);
        while (why === 'timeout');
      }
    } finally {
      watch.close();
    }
  }

  /**
   * The feed rows after `after`: one statement for every wait that asks the same at the same
   * time (the waits of a destination woken together by one message read it once).
   */
  private read(destinationId: string, after: number, limit: number): Promise<FeedRow[]> {
    const key = `${destinationId}:${after}:${limit}`;
    let reading = this.reads.get(key);
    if (!reading) {
      reading = this.store.deliveries.feedAfter(destinationId, after, limit).finally(() => this.reads.delete(key));
      this.reads.set(key, reading);
    }
    return reading;
  }

  /**
   * The newest messages first, below the cursor `before` (a `seq`; all when null), for people
   * looking at what arrived lately; `next` is the cursor of the next, older page (the smallest
   * `seq` returned). Agent systems read in arrival order with `list`.
   */
  async listNewest(
    tenantId: string,
    destinationId: string,
    before: number | null,
    limit: number,
  ): Promise<{ messages: FeedItemView[]; next: number }> {
    await this.requireDestination(tenantId, destinationId);
    const rows = await this.store.deliveries.listBefore(destinationId, before, limit);
    const messages = await this.views(tenantId, rows);
    return { messages, next: rows.length > 0 ? (rows[rows.length - 1] as DeliveryRow).seq : (before ?? 0) };
  }

  /** Whether the destination still exists in the tenant (an event stream re-checks it). */
  async stillVisible(tenantId: string, destinationId: string): Promise<boolean> {
    return (await this.store.destinations.get(tenantId, destinationId)) !== null;
  }

  /** The feed items of these deliveries, in their order (their messages read in one query). */
  private async views(tenantId: string, rows: readonly DeliveryRow[]): Promise<FeedItemView[]> {
    const found = await this.store.messages.getMany(
      tenantId,
      rows.map((d) => d.messageId),
    );
    const messages: FeedItemView[] = [];
    for (const d of rows) {
      const m = found.get(d.messageId);
      if (m) messages.push(feedItemView(d, m));
    }
    return messages;
  }

  async get(tenantId: string, destinationId: string, messageId: string): Promise<ReturnType<typeof messageDetailView>> {
    return messageDetailView(await this.requireMessage(tenantId, destinationId, messageId));
  }

  async raw(tenantId: string, destinationId: string, messageId: string): Promise<Buffer> {
    const m = await this.requireMessage(tenantId, destinationId, messageId);
    const raw = await this.store.sources.read({ tenantId, messageId }, m.sourceStore);
    if (!raw) throw new MailroomError('MESSAGE_NOT_FOUND', 'the raw source of this message was not kept (too large)');
    return raw;
  }

  async attachment(
    tenantId: string,
    destinationId: string,
    messageId: string,
    index: number,
  ): Promise<ExtractedAttachment> {
    const raw = await this.raw(tenantId, destinationId, messageId);
    const found = await this.attachments.extractAttachment(raw, index);
    if (!found) throw new MailroomError('MESSAGE_NOT_FOUND', `the message has no attachment ${index}`);
    return found;
  }

  /**
   * One message of the tenant whatever became of it (routed, unrouted, quarantined, duplicate):
   * what the operator's console opens from the trace, where a held message has no destination.
   */
  async getInTenant(tenantId: string, messageId: string): Promise<ReturnType<typeof messageDetailView>> {
    return messageDetailView(await this.requireInTenant(tenantId, messageId));
  }

  /** One attachment of a message of the tenant, by its index in the attachment list. */
  async attachmentInTenant(tenantId: string, messageId: string, index: number): Promise<ExtractedAttachment> {
    const m = await this.requireInTenant(tenantId, messageId);
    const raw = await this.store.sources.read({ tenantId, messageId }, m.sourceStore);
    if (!raw) throw new MailroomError('MESSAGE_NOT_FOUND', 'the raw source of this message was not kept (too large)');
    const found = await this.attachments.extractAttachment(raw, index);
    if (!found) throw new MailroomError('MESSAGE_NOT_FOUND', `the message has no attachment ${index}`);
    return found;
  }

  /** Claims the message for `agent`; a second claim by another agent is refused (409). */
  async claim(tenantId: string, destinationId: string, messageId: string, agent: string): Promise<FeedItemView> {
    const m = await this.requireMessage(tenantId, destinationId, messageId);
    const d = await this.store.deliveries.claim(destinationId, messageId, agent, new Date(), actorDetail());
    if (!d) throw notFound(messageId);
    if (d.claimedBy !== agent) {
      throw new MailroomError(
        'ALREADY_CLAIMED',
        `the message was claimed by '${d.claimedBy}' at ${d.claimedAt?.toISOString()}`,
        {
          details: { claimedBy: d.claimedBy },
        },
      );
    }
    return feedItemView(d, m);
  }

  /**
   * Acknowledges a delivered message. With `agent`, refused (409 ALREADY_CLAIMED) while another
   * agent holds the claim; without it, as before: whoever holds the tenant's token may.
   */
  async ack(tenantId: string, destinationId: string, messageId: string, agent?: string): Promise<FeedItemView> {
    const m = await this.requireMessage(tenantId, destinationId, messageId);
    await this.store.deliveries.ack(destinationId, messageId, new Date(), actorDetail(), agent);
    const d = await this.store.deliveries.get(destinationId, messageId);
    if (!d) throw notFound(messageId);
    if (agent !== undefined && d.claimedBy !== null && d.claimedBy !== agent) {
      throw new MailroomError(
        'ALREADY_CLAIMED',
        `the message was claimed by '${d.claimedBy}' at ${d.claimedAt?.toISOString()}; only that agent may acknowledge it`,
        { details: { claimedBy: d.claimedBy } },
      );
    }
    return feedItemView(d, m);
  }

  /** A server's quarantined, unrouted or duplicate messages, newest first. */
  async byStatus(tenantId: string, serverId: string, status: string, limit: number) {
    await this.store.servers.require(tenantId, serverId);
    return (await this.store.messages.listByStatus(tenantId, serverId, status, limit)).map(messageSummaryView);
  }

  /**
   * The engine stops: every long poll, waiting or still to come, answers at once with what it has
   * (nothing new: the cursor unchanged, so the agent asks again, of another instance or after the
   * restart) instead of holding the shutdown up for as long as its `wait` (up to a minute).
   */
  endWaits(): void {
    this.ending.abort();
  }

  private async requireDestination(tenantId: string, destinationId: string): Promise<void> {
    if (!(await this.store.destinations.get(tenantId, destinationId))) {
      throw new MailroomError('DESTINATION_NOT_FOUND', `destination ${destinationId} does not exist in this tenant`);
    }
  }

  private async requireInTenant(tenantId: string, messageId: string): Promise<InboundMessageRow> {
    const message = await this.store.messages.get(tenantId, messageId);
    if (!message) throw new MailroomError('MESSAGE_NOT_FOUND', `no message ${messageId} in this tenant`);
    return message;
  }

  private async requireMessage(tenantId: string, destinationId: string, messageId: string): Promise<InboundMessageRow> {
    await this.requireDestination(tenantId, destinationId);
    const delivery = await this.store.deliveries.get(destinationId, messageId);
    const message = delivery ? await this.store.messages.get(tenantId, messageId) : null;
    if (!message) throw notFound(messageId);
    return message;
  }
}

function notFound(messageId: string): MailroomError {
  return new MailroomError('MESSAGE_NOT_FOUND', `message ${messageId} was not delivered to this destination`);
}
