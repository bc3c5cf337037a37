import { Type } from '@sinclair/typebox';
import { ApiTokenInput, ApiTokenView } from '../../accounts/schemas.js';
import { NoContent, TenantParams, TenantTokenParams, TokenParams } from '../params.js';
import type { RouteDef } from '../route.js';

const tags = ['API tokens'];
const Created = Type.Composite([ApiTokenView, Type.Object({ token: Type.String() })]);
const List = Type.Object({ tokens: Type.Array(ApiTokenView) });

export const tokenRoutes: RouteDef[] = [
  {
    method: 'POST',
    url: '/api/v1/tenants/:tenantId/tokens',
    access: 'tenant',
    summary: 'Create a token scoped to this tenant; the token is in this answer only.',
    tags,
    errors: ['TOKEN_LIMIT_REACHED'],
    schema: { params: TenantParams, body: ApiTokenInput, response: { 201: Created } },
    handler: async (req, reply, { accounts }) => {
      reply.code(201);
      return accounts.apiTokens.create((req.params as TenantParams).tenantId, req.body);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/tokens',
    access: 'tenant',
    summary: "List this tenant's tokens (never the tokens themselves).",
    tags,
    schema: { params: TenantParams, response: { 200: List } },
    handler: async (req, _reply, { accounts }) => ({
      tokens: await accounts.apiTokens.list((req.params as TenantParams).tenantId),
    }),
  },
  {
    method: 'DELETE',
    url: '/api/v1/tenants/:tenantId/tokens/:tokenId',
    access: 'tenant',
    summary: "Revoke one of this tenant's tokens.",
    tags,
    errors: ['TOKEN_NOT_FOUND'],
    schema: { params: TenantTokenParams, response: { 204: NoContent } },
    handler: async (req, reply, { accounts }) => {
      const p = req.params as { tenantId: string; tokenId: string };
      await accounts.apiTokens.revoke(p.tokenId, p.tenantId);
      reply.code(204);
      return null;
    },
  },
  {
    method: 'POST',
    url: '/api/v1/tokens',
    access: 'admin',
    summary: 'Create another administrator token (all tenants); the token is in this answer only.',
    tags,
    schema: { body: ApiTokenInput, response: { 201: Created } },
    handler: async (req, reply, { accounts }) => {
      reply.code(201);
      return accounts.apiTokens.create(null, req.body);
    },
  },
  {
    method: 'DELETE',
    url: '/api/v1/tokens/:tokenId',
    access: 'admin',
    summary: 'Revoke any stored token.',
    tags,
    errors: ['TOKEN_NOT_FOUND'],
    schema: { params: TokenParams, response: { 204: NoContent } },
    handler: async (req, reply, { accounts }) => {
      await accounts.apiTokens.revoke((req.params as { tokenId: string }).tokenId);
      reply.code(204);
      return null;
    },
  },
];
