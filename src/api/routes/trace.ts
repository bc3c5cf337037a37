import { Type } from '@sinclair/typebox';
import { TimelineView, TRACE_STATUSES, TracePage, type TraceKind } from '../../trace/trace-service.js';
import { TenantParams } from '../params.js';
import type { RouteDef } from '../route.js';

const tags = ['message trace'];
const Id = Type.String({ format: 'uuid' });
const Address = Type.String({ minLength: 1, maxLength: 320 });
const strict = { additionalProperties: false } as const;

const SearchQuery = Type.Object(
  {
    messageId: Type.Optional(Type.String({ minLength: 1, maxLength: 998 })),
    address: Type.Optional(Address),
    // At least 3 characters: the subject index is of trigrams; a shorter part would read every subject.
    subject: Type.Optional(Type.String({ minLength: 3, maxLength: 998 })),
    from: Type.Optional(Address),
    to: Type.Optional(Address),
    destinationId: Type.Optional(Id),
    serverId: Type.Optional(Id),
    status: Type.Optional(Type.Union(TRACE_STATUSES.map((s) => Type.Literal(s)))),
    since: Type.Optional(Type.String({ format: 'date-time' })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
    kind: Type.Optional(Type.Union([Type.Literal('inbound'), Type.Literal('outbound')])),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  strict,
);
type SearchQuery = {
  [K in 'messageId' | 'address' | 'subject' | 'from' | 'to' | 'destinationId' | 'serverId' | 'status' | 'cursor']?:
    string | undefined;
} & { since?: string; until?: string; kind?: TraceKind };

export const traceRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/trace',
    access: 'tenant',
    summary:
      "Search a tenant's inbound and outbound mail, newest first (50 a page; `next` is the cursor of the next): " +
      'by Message-ID, an address (sender or recipient), a part of the subject, sender, recipient, destination, ' +
      'e-mail server, status, a time range, and inbound or outbound only (`kind`).',
    tags,
    schema: { params: TenantParams, querystring: SearchQuery, response: { 200: TracePage } },
    handler: async (req, _reply, { trace }) => {
      const q = req.query as SearchQuery;
      return trace.search((req.params as TenantParams).tenantId, {
        ...q,
        since: q.since === undefined ? undefined : new Date(q.since),
        until: q.until === undefined ? undefined : new Date(q.until),
      });
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/trace/:kind/:id',
    access: 'tenant',
    summary:
      "A message's timeline, oldest first: inbound, fetched (server, mailbox, UID), classified (and why), routed " +
      '(to which destinations, because which address in which header) or why not, webhook attempts, claimed and ' +
      'acknowledged (by which token), and the replies sent to it with their SMTP attempts; outbound, accepted (by ' +
      'which token), rendered, each SMTP attempt, rate-limit waits, sent, dead-lettered, re-queued, cancelled.',
    tags,
    schema: {
      params: Type.Object(
        { tenantId: Id, kind: Type.Union([Type.Literal('inbound'), Type.Literal('outbound')]), id: Id },
        strict,
      ),
      response: { 200: TimelineView },
    },
    handler: async (req, _reply, { trace }) => {
      const p = req.params as { tenantId: string; kind: TraceKind; id: string };
      return trace.timeline(p.tenantId, p.kind, p.id);
    },
  },
];
