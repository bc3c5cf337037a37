import { Type } from '@sinclair/typebox';
import { LISTED_RUNS, MAX_RETENTION_DAYS, type Lifecycle } from '../../lifecycle/index.js';
import { MailroomError } from '../../shared/errors.js';
import { TenantParams } from '../params.js';
import type { RouteContext, RouteDef } from '../route.js';

const tags = ['lifecycle'];
const strict = { additionalProperties: false } as const;

const Days = Type.Union([Type.Integer({ minimum: 1, maximum: MAX_RETENTION_DAYS }), Type.Null()]);
const RetentionView = Type.Object({
  rawSourceDays: Days,
  messageBodyDays: Days,
  messageDays: Days,
  outboundDays: Days,
  logDays: Days,
});
const RetentionPatch = Type.Partial(RetentionView, strict);

const ErasureInput = Type.Object(
  {
    address: Type.String({ minLength: 3, maxLength: 320 }),
    since: Type.Optional(Type.String({ format: 'date-time' })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
  },
  strict,
);
const ErasureReceipt = Type.Object({
  id: Type.String(),
  tenantId: Type.String(),
  since: Type.Union([Type.String(), Type.Null()]),
  until: Type.Union([Type.String(), Type.Null()]),
  counts: Type.Record(Type.String(), Type.Integer()),
  createdAt: Type.String(),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
  /** Who asked: an API token (its id; none for the administrator token), the CLI's user, or null once the audit entry is gone. */
  requestedBy: Type.Union([
    Type.Object({
      kind: Type.Union([Type.Literal('token'), Type.Literal('cli'), Type.Literal('engine')]),
      tokenId: Type.Union([Type.String(), Type.Null()]),
      name: Type.String(),
    }),
    Type.Null(),
  ]),
});
const RetentionRunView = Type.Object({
  startedAt: Type.String(),
  finishedAt: Type.String(),
  /** Counts per kind deleted (kinds with none left out). */
  removed: Type.Record(Type.String(), Type.Integer()),
});
const RetentionRunList = Type.Object({ runs: Type.Array(RetentionRunView) });
const ErasureList = Type.Object({ erasures: Type.Array(ErasureReceipt) });

const ErasureParams = Type.Object(
  { tenantId: Type.String({ format: 'uuid' }), erasureId: Type.String({ format: 'uuid' }) },
  strict,
);

const Count = Type.Object({ count: Type.Integer(), bytes: Type.Integer() });
const StorageView = Type.Object({
  messages: Count,
  sources: Count,
  sourcesByStore: Type.Record(Type.String(), Count),
});

/** The lifecycle, after the tenant is checked visible (another tenant's id answers 404). */
async function lifecycleFor(ctx: RouteContext, tenantId: string): Promise<Lifecycle> {
  await ctx.accounts.tenants.get(tenantId);
  if (!ctx.lifecycle) throw new MailroomError('UNAVAILABLE', 'the data lifecycle is not running in this engine');
  return ctx.lifecycle;
}

export const lifecycleRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/retention',
    access: 'tenant',
    summary: 'How long each kind of the tenant data is kept (days; null: forever).',
    tags,
    schema: { params: TenantParams, response: { 200: RetentionView } },
    handler: async (req, _reply, ctx) => {
      const { tenantId } = req.params as TenantParams;
      return (await lifecycleFor(ctx, tenantId)).retention(tenantId);
    },
  },
  {
    method: 'PUT',
    url: '/api/v1/tenants/:tenantId/retention',
    access: 'tenant',
    summary: 'Set retention: the fields given change (days from 1, or null for forever), the others stay.',
    tags,
    schema: { params: TenantParams, body: RetentionPatch, response: { 200: RetentionView } },
    handler: async (req, _reply, ctx) => {
      const { tenantId } = req.params as TenantParams;
      return (await lifecycleFor(ctx, tenantId)).setRetention(tenantId, req.body as Record<string, number | null>);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/retention/runs',
    access: 'tenant',
    summary: `What the retention job deleted of the tenant at each of its last ${LISTED_RUNS} runs, newest first.`,
    tags,
    schema: { params: TenantParams, response: { 200: RetentionRunList } },
    handler: async (req, _reply, ctx) => {
      const { tenantId } = req.params as TenantParams;
      const runs = await (await lifecycleFor(ctx, tenantId)).retentionRuns(tenantId);
      return {
        runs: runs.map((r) => ({
          startedAt: r.startedAt.toISOString(),
          finishedAt: r.finishedAt.toISOString(),
          removed: r.removed,
        })),
      };
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/erasures',
    access: 'tenant',
    summary: `The tenant's last ${LISTED_RUNS} erasure receipts, newest first (no address: only its salted hash is kept).`,
    tags,
    schema: { params: TenantParams, response: { 200: ErasureList } },
    handler: async (req, _reply, ctx) => {
      const { tenantId } = req.params as TenantParams;
      return { erasures: await (await lifecycleFor(ctx, tenantId)).erasures.list(tenantId, LISTED_RUNS) };
    },
  },
  {
    method: 'POST',
    url: '/api/v1/tenants/:tenantId/erasures',
    access: 'tenant',
    summary:
      'Erase every message from or to an address (sources, deliveries, webhook rows, outgoing mail, spool files, their trace; the address in audit and trace details); answers the receipt. Repeating it carries an unfinished erasure on, or erases again (a new receipt) what matches now.',
    tags,
    schema: { params: TenantParams, body: ErasureInput, response: { 200: ErasureReceipt } },
    handler: async (req, _reply, ctx) => {
      const { tenantId } = req.params as TenantParams;
      return (await lifecycleFor(ctx, tenantId)).erasures.erase(tenantId, req.body as { address: string });
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/erasures/:erasureId',
    access: 'tenant',
    summary: 'An erasure receipt: counts per kind and when it finished (no address: only its salted hash is kept).',
    tags,
    schema: { params: ErasureParams, response: { 200: ErasureReceipt } },
    handler: async (req, _reply, ctx) => {
      const { tenantId, erasureId } = req.params as { tenantId: string; erasureId: string };
      return (await lifecycleFor(ctx, tenantId)).erasures.get(tenantId, erasureId);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/storage',
    access: 'tenant',
    summary: 'Stored inbound messages and their sources: count and bytes, per source backend too.',
    tags,
    schema: { params: TenantParams, response: { 200: StorageView } },
    handler: async (req, _reply, ctx) => {
      const { tenantId } = req.params as TenantParams;
      const use = await (await lifecycleFor(ctx, tenantId)).storage(tenantId);
      return {
        messages: { count: use.messages, bytes: use.messageBytes },
        sources: { count: use.sources, bytes: use.sourceBytes },
        sourcesByStore: use.sourcesByStore,
      };
    },
  },
];
