import { Type } from '@sinclair/typebox';
import type { RouteDef } from '../route.js';

export const healthRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: '/healthz',
    access: 'public',
    summary: 'Liveness: the process answers HTTP.',
    tags: ['operations'],
    schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    handler: async () => ({ status: 'ok' as const }),
  },
  {
    method: 'GET',
    url: '/api/v1/openapi.json',
    access: 'public',
    summary: 'This API as an OpenAPI 3 document.',
    tags: ['operations'],
    schema: { response: {} },
    handler: async (_req, _reply, ctx) => ctx.openapi(),
  },
];
