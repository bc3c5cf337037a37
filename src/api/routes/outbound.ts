import { Type } from '@sinclair/typebox';
import { DeadLetterView, OutboundView, SendInput } from '../../outbound/schemas.js';
import { DestinationParams, NoContent, ServerParams } from '../params.js';
import type { RouteDef } from '../route.js';

const tags = ['outbound'];
const Id = Type.String({ format: 'uuid' });
const strict = { additionalProperties: false } as const;
const OutboundParams = Type.Object({ tenantId: Id, destinationId: Id, outboundId: Id }, strict);
const DeadParams = Type.Object({ tenantId: Id, serverId: Id, outboundId: Id }, strict);

export const outboundRoutes: RouteDef[] = [
  {
    method: 'POST',
    url: '/api/v1/tenants/:tenantId/destinations/:destinationId/outbound',
    access: 'tenant',
    summary:
      'Send a reply or notification from the destination. Answers 202 once the message is safe in the disk spool; ' +
      'delivery follows in order under the account’s rate limit.',
    tags,
    schema: { params: DestinationParams, body: SendInput, response: { 202: OutboundView } },
    handler: async (req, reply, { outbound }) => {
      const p = req.params as DestinationParams;
      reply.code(202);
      return outbound.accept(p.tenantId, p.destinationId, req.body);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/destinations/:destinationId/outbound/:outboundId',
    access: 'tenant',
    summary:
      'Status of an outgoing message: queued, sending, sent, deferred or failed, with attempts and the last SMTP reply.',
    tags,
    schema: { params: OutboundParams, response: { 200: OutboundView } },
    handler: async (req, _reply, { outbound }) => {
      const p = req.params as { tenantId: string; destinationId: string; outboundId: string };
      return outbound.get(p.tenantId, p.destinationId, p.outboundId);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/servers/:serverId/dead-letters',
    access: 'tenant',
    summary: 'Messages the server refused for good (5xx) or that outlived their retries.',
    tags,
    schema: { params: ServerParams, response: { 200: Type.Object({ deadLetters: Type.Array(DeadLetterView) }) } },
    handler: async (req, _reply, { accounts, outbound }) => {
      const p = req.params as ServerParams;
      await accounts.servers.get(p.tenantId, p.serverId);
      return { deadLetters: await outbound.deadLetters(p.serverId) };
    },
  },
  {
    method: 'POST',
    url: '/api/v1/tenants/:tenantId/servers/:serverId/dead-letters/:outboundId/requeue',
    access: 'tenant',
    summary: 'Put a dead letter back at the end of the queue.',
    tags,
    schema: { params: DeadParams, body: Type.Object({}, strict), response: { 204: NoContent } },
    handler: async (req, reply, { accounts, outbound }) => {
      const p = req.params as { tenantId: string; serverId: string; outboundId: string };
      await accounts.servers.get(p.tenantId, p.serverId);
      await outbound.requeueDeadLetter(p.serverId, p.outboundId);
      reply.code(204);
      return null;
    },
  },
  {
    method: 'DELETE',
    url: '/api/v1/tenants/:tenantId/servers/:serverId/dead-letters/:outboundId',
    access: 'tenant',
    summary: 'Delete a dead letter.',
    tags,
    schema: { params: DeadParams, response: { 204: NoContent } },
    handler: async (req, reply, { accounts, outbound }) => {
      const p = req.params as { tenantId: string; serverId: string; outboundId: string };
      await accounts.servers.get(p.tenantId, p.serverId);
      await outbound.deleteDeadLetter(p.serverId, p.outboundId);
      reply.code(204);
      return null;
    },
  },
];
