import { Type } from '@sinclair/typebox';
import { MailroomError } from '../../shared/errors.js';
import type { OperationsApi, RouteContext, RouteDef } from '../route.js';

function operationsOf(ctx: RouteContext): OperationsApi {
  if (!ctx.operations) throw new MailroomError('UNAVAILABLE', 'operations data is not available in this API');
  return ctx.operations;
}

const Check = Type.Object({ name: Type.String(), ok: Type.Boolean(), detail: Type.String() });
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not ready')]),
  checks: Type.Array(Check),
});

const ClusterView = Type.Object({
  self: Type.Object({ instanceId: Type.String(), owner: Type.String() }),
  instances: Type.Array(
    Type.Object({
      owner: Type.String(),
      instanceId: Type.String(),
      startedAt: Type.String({ format: 'date-time' }),
      expiresAt: Type.String({ format: 'date-time' }),
      servers: Type.Integer(),
    }),
  ),
  leases: Type.Array(
    Type.Object({
      serverId: Type.String({ format: 'uuid' }),
      owner: Type.String(),
      instanceId: Type.String(),
      expiresAt: Type.String({ format: 'date-time' }),
    }),
  ),
});

export const healthRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: '/healthz',
    access: 'public',
    probe: true,
    summary: 'Liveness: the process answers HTTP.',
    tags: ['operations'],
    withoutDatabase: true,
    schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    handler: async () => ({ status: 'ok' as const }),
  },
  {
    method: 'GET',
    url: '/readyz',
    access: 'public',
    probe: true,
    summary:
      'Readiness: the engine runs, the database answers and this instance holds its leases (503 with the failing checks otherwise).',
    tags: ['operations'],
    errors: ['UNAVAILABLE'],
    schema: { response: { 200: Readiness, 503: Readiness } },
    handler: async (_req, reply, ctx) => {
      const { ready, checks } = await operationsOf(ctx).readiness();
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
    },
  },
  {
    method: 'GET',
    url: '/metrics',
    access: 'admin',
    summary: 'Prometheus metrics of this instance (text exposition format).',
    tags: ['operations'],
    errors: ['UNAVAILABLE'],
    produces: 'text/plain',
    schema: { response: { 200: Type.String({ description: 'Prometheus text exposition format 0.0.4' }) } },
    handler: async (_req, reply, ctx) => {
      const { contentType, body } = await operationsOf(ctx).metrics();
      return reply.type(contentType).send(body);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/cluster',
    access: 'admin',
    summary: 'The engine instances sharing this database and which one watches each e-mail server.',
    tags: ['operations'],
    errors: ['UNAVAILABLE'],
    schema: { response: { 200: ClusterView } },
    handler: async (_req, _reply, ctx) => operationsOf(ctx).cluster(),
  },
  {
    method: 'GET',
    url: '/api/v1/openapi.json',
    access: 'public',
    summary: 'This API as an OpenAPI 3 document.',
    tags: ['operations'],
    withoutDatabase: true,
    schema: {
      response: { 200: Type.Object({}, { additionalProperties: true, description: 'an OpenAPI 3.0.3 document' }) },
    },
    handler: async (_req, _reply, ctx) => ctx.openapi(),
  },
];
