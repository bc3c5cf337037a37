import { Type } from '@sinclair/typebox';
import { DestinationCopy, DestinationInput, DestinationPatch, DestinationView } from '../../accounts/schemas.js';
import { DestinationParams, NoContent, TenantParams } from '../params.js';
import type { RouteDef } from '../route.js';

const tags = ['destinations'];
const base = '/api/v1/tenants/:tenantId/destinations';

export const destinationRoutes: RouteDef[] = [
  {
    method: 'POST',
    url: base,
    access: 'tenant',
    summary: 'Add a destination (a monitored address) and the e-mail server it uses.',
    tags,
    errors: ['DUPLICATE_NAME', 'DUPLICATE_ADDRESS'],
    schema: { params: TenantParams, body: DestinationInput, response: { 201: DestinationView } },
    handler: async (req, reply, { accounts }) => {
      reply.code(201);
      return accounts.destinations.create((req.params as TenantParams).tenantId, req.body);
    },
  },
  {
    method: 'GET',
    url: base,
    access: 'tenant',
    summary: "List a tenant's destinations.",
    tags,
    schema: { params: TenantParams, response: { 200: Type.Object({ destinations: Type.Array(DestinationView) }) } },
    handler: async (req, _reply, { accounts }) => ({
      destinations: await accounts.destinations.list((req.params as TenantParams).tenantId),
    }),
  },
  {
    method: 'GET',
    url: `${base}/:destinationId`,
    access: 'tenant',
    summary: 'Get a destination.',
    tags,
    errors: ['DESTINATION_NOT_FOUND'],
    schema: { params: DestinationParams, response: { 200: DestinationView } },
    handler: async (req, _reply, { accounts }) => {
      const p = req.params as DestinationParams;
      return accounts.destinations.get(p.tenantId, p.destinationId);
    },
  },
  {
    method: 'PATCH',
    url: `${base}/:destinationId`,
    access: 'tenant',
    summary: 'Change any settings of a destination.',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'DUPLICATE_NAME', 'DUPLICATE_ADDRESS'],
    schema: { params: DestinationParams, body: DestinationPatch, response: { 200: DestinationView } },
    handler: async (req, _reply, { accounts }) => {
      const p = req.params as DestinationParams;
      return accounts.destinations.update(p.tenantId, p.destinationId, req.body);
    },
  },
  {
    method: 'DELETE',
    url: `${base}/:destinationId`,
    access: 'tenant',
    summary: 'Delete a destination.',
    tags,
    errors: ['DESTINATION_NOT_FOUND'],
    schema: { params: DestinationParams, response: { 204: NoContent } },
    handler: async (req, reply, { accounts }) => {
      const p = req.params as DestinationParams;
      await accounts.destinations.delete(p.tenantId, p.destinationId);
      reply.code(204);
      return null;
    },
  },
  {
    method: 'POST',
    url: `${base}/:destinationId/copy`,
    access: 'tenant',
    summary: 'Copy a destination under a new name and address.',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'DUPLICATE_NAME', 'DUPLICATE_ADDRESS'],
    schema: { params: DestinationParams, body: DestinationCopy, response: { 201: DestinationView } },
    handler: async (req, reply, { accounts }) => {
      const p = req.params as DestinationParams;
      reply.code(201);
      return accounts.destinations.copy(p.tenantId, p.destinationId, req.body);
    },
  },
];
