import { Type, type Static } from '@sinclair/typebox';
import { MailroomError } from '../shared/errors.js';
import type { AuditRow } from '../store/audit-log.js';
import type { Store } from '../store/store.js';
import type { Principal } from './api-token-service.js';

/** [100] entries per page of the audit log. */
const PAGE = 100;

export const AuditEntryView = Type.Object({
  id: Type.String(),
  at: Type.String({ format: 'date-time' }),
  tenantId: Type.Union([Type.String(), Type.Null()]),
  /** Who: an API token (id and name; the configured administrator token has no id), "CLI (user)", or the engine. */
  actor: Type.Object({
    kind: Type.Union([Type.Literal('token'), Type.Literal('cli'), Type.Literal('engine')]),
    tokenId: Type.Union([Type.String(), Type.Null()]),
    name: Type.String(),
  }),
  action: Type.String(),
  target: Type.Object({ kind: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }),
  /** Before and after (changed fields only for a change); secrets only as changed/unchanged. */
  detail: Type.Record(Type.String(), Type.Unknown()),
});
export type AuditEntryView = Static<typeof AuditEntryView>;

export const AuditPage = Type.Object({
  entries: Type.Array(AuditEntryView),
  /** Cursor of the next (older) page; null at the end. */
  next: Type.Union([Type.String(), Type.Null()]),
});
export type AuditPage = Static<typeof AuditPage>;

function entryView(row: AuditRow): AuditEntryView {
  return {
    id: String(row.id),
    at: row.at.toISOString(),
    tenantId: row.tenantId,
    actor: {
      kind: row.actor.kind,
      tokenId: row.actor.kind === 'token' ? row.actor.tokenId : null,
      name: row.actor.name,
    },
    action: row.action,
    target: { kind: row.targetKind, id: row.targetId },
    detail: row.detail,
  };
}

/** Reading the audit log: administrators see every entry, a tenant's token only its tenant's. */
export class AuditService {
  constructor(private readonly store: Store) {}

  async list(
    principal: Principal,
    query: { tenantId?: string | undefined; since?: string | undefined; cursor?: string | undefined },
  ): Promise<AuditPage> {
    let tenantId = query.tenantId;
    if (principal.kind === 'tenant') {
      // Another tenant's entries are as absent as the tenant itself is to this token.
      if (tenantId !== undefined && tenantId !== principal.tenantId) {
        throw new MailroomError('TENANT_NOT_FOUND', `tenant ${tenantId} does not exist`);
      }
      tenantId = principal.tenantId;
    }
    let beforeId: number | undefined;
    if (query.cursor !== undefined) {
      beforeId = Number(query.cursor);
      if (!/^[1-9][0-9]{0,15}$/.test(query.cursor) || !Number.isSafeInteger(beforeId)) {
        throw new MailroomError('VALIDATION_FAILED', "'cursor' must be the 'next' of an earlier page", {
          field: 'cursor',
        });
      }
    }
    const rows = await this.store.audit.list({
      tenantId,
      since: query.since === undefined ? undefined : new Date(query.since),
      beforeId,
      limit: PAGE + 1,
    });
    const page = rows.slice(0, PAGE);
    const last = page[page.length - 1];
    return { entries: page.map(entryView), next: rows.length > PAGE && last ? String(last.id) : null };
  }
}
