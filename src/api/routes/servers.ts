import { Type } from '@sinclair/typebox';
import { ProxyChoices, ServerCopy, ServerInput, ServerPatch, ServerView } from '../../accounts/schemas.js';
import { serverBodyFaults } from '../../accounts/server-form.js';
import { NoContent, ServerParams, TenantParams } from '../params.js';
import { principalOf, type RouteDef, type RouteRequest } from '../route.js';
import type { ChangedBy } from '../../accounts/mail-hosts.js';

const tags = ['e-mail servers'];

const ConnectionTestView = Type.Object({
  ok: Type.Boolean(),
  /** What happened, in plain words (never a secret). */
  detail: Type.String(),
  ms: Type.Integer(),
});
const base = '/api/v1/tenants/:tenantId/servers';

/** A tenant's token, or the operator (an administrator token): where a tenant's hosts may lead is limited. */
function changedBy(req: RouteRequest): ChangedBy {
  return principalOf(req).kind === 'tenant' ? 'tenant' : 'operator';
}

export const serverRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: '/api/v1/proxies',
    access: 'tenant',
    summary:
      "The proxies an e-mail server's `proxy` can choose: null takes the default, 'none' connects directly, a name its proxy.",
    tags,
    schema: { response: { 200: ProxyChoices } },
    handler: async (_req, _reply, { accounts }) => accounts.servers.proxyChoices(),
  },
  {
    method: 'POST',
    url: base,
    access: 'tenant',
    summary: 'Add an e-mail server (IMAP + SMTP account); at most five per tenant.',
    tags,
    errors: ['SERVER_LIMIT_REACHED', 'ACCOUNT_IN_USE', 'DUPLICATE_NAME', 'PROXY_NOT_CONFIGURED', 'SECRET_UNREADABLE'],
    schema: { params: TenantParams, body: ServerInput, response: { 201: ServerView } },
    bodyFaults: serverBodyFaults,
    handler: async (req, reply, { accounts }) => {
      reply.code(201);
      return accounts.servers.create((req.params as TenantParams).tenantId, req.body, changedBy(req));
    },
  },
  {
    method: 'GET',
    url: base,
    access: 'tenant',
    summary: "List a tenant's e-mail servers.",
    tags,
    schema: { params: TenantParams, response: { 200: Type.Object({ servers: Type.Array(ServerView) }) } },
    handler: async (req, _reply, { accounts }) => ({
      servers: await accounts.servers.list((req.params as TenantParams).tenantId),
    }),
  },
  {
    method: 'GET',
    url: `${base}/:serverId`,
    access: 'tenant',
    summary: 'Get an e-mail server (secrets appear only as hasPassword / hasClientSecret).',
    tags,
    errors: ['SERVER_NOT_FOUND'],
    schema: { params: ServerParams, response: { 200: ServerView } },
    handler: async (req, _reply, { accounts }) => {
      const p = req.params as ServerParams;
      return accounts.servers.get(p.tenantId, p.serverId);
    },
  },
  {
    method: 'PATCH',
    url: `${base}/:serverId`,
    access: 'tenant',
    summary: 'Change any settings of an e-mail server. A changed host or user name needs the password again.',
    tags,
    errors: ['SERVER_NOT_FOUND', 'ACCOUNT_IN_USE', 'DUPLICATE_NAME', 'PROXY_NOT_CONFIGURED', 'SECRET_UNREADABLE'],
    schema: { params: ServerParams, body: ServerPatch, response: { 200: ServerView } },
    handler: async (req, _reply, { accounts }) => {
      const p = req.params as ServerParams;
      return accounts.servers.update(p.tenantId, p.serverId, req.body, changedBy(req));
    },
  },
  {
    method: 'POST',
    url: `${base}/:serverId/test`,
    access: 'tenant',
    summary:
      '"Test connection": connect to the IMAP and the SMTP server as the stored settings say and log in, ' +
      'without reading or sending mail; each side says what happened in plain words (ok or why not).',
    tags,
    errors: ['SERVER_NOT_FOUND', 'PROXY_NOT_CONFIGURED', 'SECRET_UNREADABLE'],
    schema: {
      params: ServerParams,
      body: Type.Optional(Type.Object({}, { additionalProperties: false })),
      response: { 200: Type.Object({ imap: ConnectionTestView, smtp: ConnectionTestView }) },
    },
    handler: async (req, _reply, { inbound, outbound }) => {
      const p = req.params as ServerParams;
      const [imap, smtp] = await Promise.all([
        inbound.testConnection(p.tenantId, p.serverId),
        outbound.testConnection(p.tenantId, p.serverId),
      ]);
      return { imap, smtp };
    },
  },
  {
    method: 'DELETE',
    url: `${base}/:serverId`,
    access: 'tenant',
    summary:
      'Delete an e-mail server that no destination uses. Outgoing mail still waiting to be sent through it ' +
      'refuses the deletion (409 SERVER_HAS_QUEUED_MAIL) unless `discardQueued=true` gives that mail up ' +
      '(each message marked failed, its file kept as a dead letter).',
    tags,
    errors: ['SERVER_NOT_FOUND', 'SERVER_IN_USE', 'SERVER_HAS_QUEUED_MAIL'],
    schema: {
      params: ServerParams,
      querystring: Type.Object({ discardQueued: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      response: { 204: NoContent },
    },
    handler: async (req, reply, { accounts }) => {
      const p = req.params as ServerParams;
      const q = req.query as { discardQueued?: boolean };
      await accounts.servers.delete(p.tenantId, p.serverId, { discardQueued: q.discardQueued === true });
      reply.code(204);
      return null;
    },
  },
  {
    method: 'POST',
    url: `${base}/:serverId/copy`,
    access: 'tenant',
    summary: 'Copy an e-mail server under a new name, with optional changes (usually user name and password).',
    tags,
    errors: ['SERVER_NOT_FOUND', 'SERVER_LIMIT_REACHED', 'ACCOUNT_IN_USE', 'DUPLICATE_NAME', 'SECRET_UNREADABLE'],
    schema: { params: ServerParams, body: ServerCopy, response: { 201: ServerView } },
    handler: async (req, reply, { accounts }) => {
      const p = req.params as ServerParams;
      reply.code(201);
      return accounts.servers.copy(p.tenantId, p.serverId, req.body, changedBy(req));
    },
  },
];
