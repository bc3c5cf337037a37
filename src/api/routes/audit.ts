import { Type } from '@sinclair/typebox';
import { AuditPage } from '../../accounts/audit-service.js';
import { principalOf, type RouteDef } from '../route.js';

export const auditRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: '/api/v1/audit',
    access: 'tenant',
    summary:
      'The audit log, newest first: every change made through the API, the CLI or the console, when, by whom ' +
      '(token name and id, or CLI with the operating-system user) and what (before/after; secrets only as ' +
      "changed/unchanged). Administrators see all (or one tenant's with tenantId), a tenant's token its tenant's.",
    tags: ['audit'],
    schema: {
      querystring: Type.Object(
        {
          tenantId: Type.Optional(Type.String({ format: 'uuid' })),
          since: Type.Optional(Type.String({ format: 'date-time' })),
          cursor: Type.Optional(Type.String({ maxLength: 20 })),
        },
        { additionalProperties: false },
      ),
      response: { 200: AuditPage },
    },
    handler: async (req, _reply, { accounts }) =>
      accounts.audit.list(principalOf(req), req.query as { tenantId?: string; since?: string; cursor?: string }),
  },
];
