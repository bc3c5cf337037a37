import { Type } from '@sinclair/typebox';
import { TenantInput, TenantPatch, TenantView } from '../../accounts/schemas.js';
import { NoContent, TenantParams } from '../params.js';
import { principalOf, type RouteDef } from '../route.js';

const tags = ['tenants'];

export const tenantRoutes: RouteDef[] = [
  {
    method: 'POST',
    url: '/api/v1/tenants',
    access: 'admin',
    summary: 'Create a tenant (business unit).',
    tags,
    errors: ['DUPLICATE_NAME'],
    schema: { body: TenantInput, response: { 201: TenantView } },
    handler: async (req, reply, { accounts }) => {
      reply.code(201);
      return accounts.tenants.create(req.body);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants',
    access: 'tenant',
    summary: 'List tenants (a tenant-scoped token sees its own only).',
    tags,
    schema: { response: { 200: Type.Object({ tenants: Type.Array(TenantView) }) } },
    handler: async (req, _reply, { accounts }) => {
      const principal = principalOf(req);
      return { tenants: await accounts.tenants.list(principal.kind === 'tenant' ? principal.tenantId : undefined) };
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId',
    access: 'tenant',
    summary: 'Get a tenant.',
    tags,
    schema: { params: TenantParams, response: { 200: TenantView } },
    handler: async (req, _reply, { accounts }) => accounts.tenants.get((req.params as TenantParams).tenantId),
  },
  {
    method: 'PATCH',
    url: '/api/v1/tenants/:tenantId',
    access: 'tenant',
    summary: 'Rename a tenant.',
    tags,
    errors: ['DUPLICATE_NAME'],
    schema: { params: TenantParams, body: TenantPatch, response: { 200: TenantView } },
    handler: async (req, _reply, { accounts }) =>
      accounts.tenants.update((req.params as TenantParams).tenantId, req.body),
  },
  {
    method: 'DELETE',
    url: '/api/v1/tenants/:tenantId',
    access: 'admin',
    summary: 'Delete an empty tenant.',
    tags,
    errors: ['TENANT_NOT_EMPTY'],
    schema: { params: TenantParams, response: { 204: NoContent } },
    handler: async (req, reply, { accounts }) => {
      await accounts.tenants.delete((req.params as TenantParams).tenantId);
      reply.code(204);
      return null;
    },
  },
];
