import { Type } from '@sinclair/typebox';
import type { RouteDef } from '../route.js';

const tags = ['inbound messages'];
const Id = Type.String({ format: 'uuid' });
const strict = { additionalProperties: false } as const;
const HeldParams = Type.Object({ tenantId: Id, serverId: Id, messageId: Id }, strict);
type HeldParams = { tenantId: string; serverId: string; messageId: string };
const base = '/api/v1/tenants/:tenantId/servers/:serverId/messages/:messageId';
const Outcome = Type.Object({
  id: Type.String(),
  status: Type.String(),
  destinationIds: Type.Array(Type.String()),
});

export const heldMailRoutes: RouteDef[] = [
  {
    method: 'POST',
    url: `${base}/route`,
    access: 'tenant',
    summary:
      'Route an unrouted or quarantined message of the server to a destination of the tenant (traced and audited).',
    tags,
    schema: {
      params: HeldParams,
      body: Type.Object({ destinationId: Id }, strict),
      response: { 200: Outcome },
    },
    handler: async (req, _reply, { inbound }) => {
      const p = req.params as HeldParams;
      return inbound.held.routeTo(
        p.tenantId,
        p.serverId,
        p.messageId,
        (req.body as { destinationId: string }).destinationId,
      );
    },
  },
  {
    method: 'POST',
    url: `${base}/release`,
    access: 'tenant',
    summary:
      'Release an unrouted or quarantined message after a fix: parsed again from its stored source and routed by ' +
      "the server's destinations of now (409 MESSAGE_NOT_RELEASABLE, with why, while it would still be held).",
    tags,
    schema: {
      params: HeldParams,
      body: Type.Optional(Type.Object({}, strict)),
      response: { 200: Outcome },
    },
    handler: async (req, _reply, { inbound }) => {
      const p = req.params as HeldParams;
      return inbound.held.release(p.tenantId, p.serverId, p.messageId);
    },
  },
  {
    method: 'DELETE',
    url: base,
    access: 'tenant',
    summary: 'Delete an unrouted or quarantined message for good (traced and audited).',
    tags,
    schema: { params: HeldParams, response: { 200: Outcome } },
    handler: async (req, _reply, { inbound }) => {
      const p = req.params as HeldParams;
      return inbound.held.delete(p.tenantId, p.serverId, p.messageId);
    },
  },
];
