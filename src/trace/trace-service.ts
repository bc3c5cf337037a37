import { Type, type Static } from '@sinclair/typebox';
import { MailroomError } from '../shared/errors.js';
import type { InboundMessageRow, OutboundMessageRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { TraceEventRow } from '../store/trace-events.js';
import type { TraceCursor, TraceFilters } from '../store/trace-search.js';

/** [50] hits per page of a trace search. */
const PAGE = 50;

export const TraceHitView = Type.Object({
  kind: Type.Union([Type.Literal('inbound'), Type.Literal('outbound')]),
  id: Type.String(),
  at: Type.String({ format: 'date-time' }),
  subject: Type.String(),
  from: Type.Union([Type.String(), Type.Null()]),
  to: Type.Array(Type.String()),
  status: Type.String(),
  serverId: Type.String(),
  messageId: Type.Union([Type.String(), Type.Null()]),
});
export const TracePage = Type.Object({
  messages: Type.Array(TraceHitView),
  /** Cursor of the next (older) page; null at the end. */
  next: Type.Union([Type.String(), Type.Null()]),
});
export type TracePage = Static<typeof TracePage>;

export const TraceEventView = Type.Object({
  at: Type.String({ format: 'date-time' }),
  type: Type.String(),
  detail: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  /** Set on events of another message shown in this timeline (a reply's SMTP attempts). */
  of: Type.Optional(Type.Object({ kind: Type.Literal('outbound'), id: Type.String() })),
});
export type TraceEventView = Static<typeof TraceEventView>;

export const TimelineView = Type.Object({
  kind: Type.Union([Type.Literal('inbound'), Type.Literal('outbound')]),
  id: Type.String(),
  /** Null for an inbound message deleted since (its row went; its events stay). */
  subject: Type.Union([Type.String(), Type.Null()]),
  status: Type.String(),
  /**
   * An outgoing message's destination (it was sent from its address); its fields (recipients,
   * attempts, last SMTP reply, server) are at `…/destinations/{destinationId}/outbound/{id}`.
   */
  destinationId: Type.Optional(Type.String()),
  events: Type.Array(TraceEventView),
});
export type TimelineView = Static<typeof TimelineView>;

export type TraceKind = 'inbound' | 'outbound';

/** The statuses a trace search may ask for: an inbound message's, then an outgoing one's. */
export const TRACE_STATUSES = [
  'routed',
  'unrouted',
  'quarantined',
  'duplicate',
  'heartbeat',
  'queued',
  'sending',
  'sent',
  'deferred',
  'failed',
] as const satisfies ReadonlyArray<InboundMessageRow['status'] | OutboundMessageRow['status']>;

/** Why a message was left unrouted, in words (the decision itself is the event). */
const UNROUTED_REASON =
  "no monitored destination has one of the message's recipient addresses, and the e-mail server has no default destination";

function encodeCursor(at: Date, id: string): string {
  return Buffer.from(`${at.toISOString()}|${id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): TraceCursor {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const date = new Date(at ?? '');
  if (!id || !/^[0-9a-f-]{36}$/.test(id) || Number.isNaN(date.getTime())) {
    throw new MailroomError('VALIDATION_FAILED', "'cursor' must be the 'next' of an earlier page", {
      field: 'cursor',
    });
  }
  return { at: date, id };
}

function eventView(e: TraceEventRow, ownId: string): TraceEventView {
  return {
    at: e.at.toISOString(),
    type: e.type,
    detail: e.detail,
    ...(e.messageId !== ownId && { of: { kind: 'outbound' as const, id: e.messageId } }),
  };
}

/** What the message row says of its arrival, as the first events of its timeline. */
function arrivalEvents(m: InboundMessageRow): TraceEventView[] {
  const at = m.ingestedAt.toISOString();
  const events: TraceEventView[] = [
    {
      at,
      type: 'fetched',
      detail: {
        serverId: m.serverId,
        mailbox: m.mailbox,
        uidValidity: m.uidValidity,
        uid: m.uid,
        size: m.size,
        receivedAt: m.receivedAt.toISOString(),
      },
    },
  ];
  if (m.status !== 'quarantined' || m.messageIdHeader !== null || m.subject !== '') {
    events.push({ at, type: 'classified', detail: { ...m.classification } });
  }
  return events;
}

/** Fills what an ingest event leaves to the row (the quarantine reason, why unrouted). */
function withRowDetail(view: TraceEventView, m: InboundMessageRow): TraceEventView {
  if (view.of !== undefined) return view;
  if (view.type === 'quarantined' && view.detail === null) return { ...view, detail: { reason: m.quarantineReason } };
  if (view.type === 'unrouted' && view.detail === null) return { ...view, detail: { reason: UNROUTED_REASON } };
  return view;
}

/**
 * The operator's message trace: search across a tenant's inbound and outbound mail, and the
 * timeline of one message (with the replies sent to it), from the message rows and their events.
 */
export class TraceService {
  /** Searches running on this instance, per tenant. */
  private readonly running = new Map<string, number>();
  private total = 0;

  /**
   * @param limits.perTenant [2] searches one tenant may run at once on this instance
   * @param limits.total [4] searches all tenants together may run at once on this instance: a
   *   search over a large mailbox holds a database connection for up to a second, and the pool is
   *   shared with routing, webhooks and every other tenant
   */
  constructor(
    private readonly store: Store,
    private readonly limits = { perTenant: 2, total: 4 },
  ) {}

  async search(tenantId: string, filters: TraceFilters & { cursor?: string | undefined }): Promise<TracePage> {
    const cursor = filters.cursor === undefined ? null : decodeCursor(filters.cursor);
    const held = this.running.get(tenantId) ?? 0;
    if (held >= this.limits.perTenant || this.total >= this.limits.total) {
      throw new MailroomError(
        'TOO_MANY_SEARCHES',
        held >= this.limits.perTenant
          ? `this tenant already runs ${held} trace searches (at most ${this.limits.perTenant} at once); try again when one has answered`
          : 'the engine already runs as many trace searches as it may at once; try again in a moment',
        { retryAfterSeconds: 1 },
      );
    }
    this.running.set(tenantId, held + 1);
    this.total += 1;
    let hits: Awaited<ReturnType<Store['traceSearch']['search']>>;
    try {
      hits = await this.store.traceSearch.search(tenantId, filters, cursor, PAGE + 1);
    } finally {
      this.total -= 1;
      const now = (this.running.get(tenantId) ?? 1) - 1;
      if (now <= 0) this.running.delete(tenantId);
      else this.running.set(tenantId, now);
    }
    const page = hits.slice(0, PAGE);
    const last = page[page.length - 1];
    return {
      messages: page.map((h) => ({
        kind: h.kind,
        id: h.id,
        at: h.at.toISOString(),
        subject: h.subject,
        from: h.from,
        to: h.to,
        status: h.status,
        serverId: h.serverId,
        messageId: h.messageIdHeader,
      })),
      next: hits.length > PAGE && last ? encodeCursor(last.at, last.id) : null,
    };
  }

  async timeline(tenantId: string, kind: TraceKind, id: string): Promise<TimelineView> {
    if (kind === 'inbound') {
      const m = await this.store.messages.get(tenantId, id);
      const events = await this.store.trace.timeline(tenantId, id, true);
      if (!m) {
        // Deleted (an operator's delete, or retention): the events tell what happened, the row's
        // details (subject, arrival) went with it. An erased message has no events left: 404.
        if (!events.some((e) => e.messageId === id)) throw notFound(kind, id);
        return { kind, id, subject: null, status: 'deleted', events: events.map((e) => eventView(e, id)) };
      }
      return {
        kind,
        id,
        subject: m.subject,
        status: m.status,
        events: [...arrivalEvents(m), ...events.map((e) => withRowDetail(eventView(e, id), m))],
      };
    }
    const o: OutboundMessageRow | null = await this.store.outbound.get(tenantId, id);
    if (!o) throw notFound(kind, id);
    const events = await this.store.trace.timeline(tenantId, id, false);
    return {
      kind,
      id,
      subject: o.subject,
      status: o.status,
      destinationId: o.destinationId,
      events: events.map((e) => eventView(e, id)),
    };
  }
}

function notFound(kind: TraceKind, id: string): MailroomError {
  return new MailroomError('MESSAGE_NOT_FOUND', `no ${kind} message ${id} in this tenant`, { details: { id } });
}
