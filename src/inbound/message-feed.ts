import { setMaxListeners } from 'node:events';
import { MailroomError } from '../shared/errors.js';
import type { DeliveryRow, FeedRow, InboundMessageRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { ExtractedAttachment } from './message/parse.js';
import type { RoutedSignals } from './routed-signals.js';
import { feedItemView, messageDetailView, messageSummaryView, type FeedItemView } from './views.js';

export interface AttachmentExtractor {
  extractAttachment(raw: Buffer, index: number): Promise<ExtractedAttachment | null>;
}

/**
 * [30000] how often a waiting long poll or event stream reads the database although it was not
 * woken, ms: a safety net for a signal lost with the listening connection (another instance's
 * messages are announced by NOTIFY and wake the wait at once).
 */
const SAFETY_RECHECK_MS = 30_000;

/**
 * What agents' systems read: each destination's messages in arrival order behind a cursor that
 * never skips or repeats (`seq`), with long polling, and claim/acknowledge so that one agent
 * system takes a message exactly once.
 */
export class MessageFeed {
  /** Aborted by `endWaits()`: long polls answer with what they have (nothing new) at once. */
  private readonly ending = new AbortController();

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
  ): Promise<{ messages: FeedItemView[]; next: number }> {
    await this.requireDestination(tenantId, destinationId);
    // Watching before the first read: a message routed between the read and the wait wakes it.
    const watch = waitMs > 0 && !this.ending.signal.aborted ? this.signals.watch(destinationId) : undefined;
    let rows: FeedRow[];
    try {
      rows = await this.store.deliveries.feedAfter(destinationId, after, limit);
      if (watch) {
        const deadline = Date.now() + waitMs;
        while (rows.length === 0 && !this.ending.signal.aborted) {
          const remaining = deadline - Date.now();
          if (remaining <= 0) break;
          await watch.next(Math.min(SAFETY_RECHECK_MS, remaining), this.ending.signal);
          if (this.ending.signal.aborted) break;
          rows = await this.store.deliveries.feedAfter(destinationId, after, limit);
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
   * costs nothing but the safety re-read every 30 s. The destination is checked first (404).
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
    const watch = this.signals.watch(destinationId);
    try {
      let cursor = after;
      while (!stop.aborted) {
        const rows = await this.store.deliveries.feedAfter(destinationId, cursor, batch);
        if (rows.length > 0) {
          cursor = (rows[rows.length - 1] as FeedRow).delivery.seq;
          yield rows.map((r) => feedItemView(r.delivery, r.message));
          continue;
        }
        await watch.next(SAFETY_RECHECK_MS, stop);
      }
    } finally {
      watch.close();
    }
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
    await this.requireMessage(tenantId, destinationId, messageId);
    const raw = await this.store.messages.raw(messageId);
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

  /** Claims the message for `agent`; a second claim by another agent is refused (409). */
  async claim(tenantId: string, destinationId: string, messageId: string, agent: string): Promise<FeedItemView> {
    const m = await this.requireMessage(tenantId, destinationId, messageId);
    const d = await this.store.deliveries.claim(destinationId, messageId, agent, new Date());
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

  async ack(tenantId: string, destinationId: string, messageId: string): Promise<FeedItemView> {
    const m = await this.requireMessage(tenantId, destinationId, messageId);
    await this.store.deliveries.ack(destinationId, messageId, new Date());
    const d = await this.store.deliveries.get(destinationId, messageId);
    if (!d) throw notFound(messageId);
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
