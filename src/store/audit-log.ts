import type { EntityManager } from 'typeorm';
import { currentActor, type Actor } from '../shared/actor.js';
import { withoutNul } from './inbound-repositories.js';

/** What changed, as the audit log keeps it: never a secret, only whether one changed. */
export interface AuditDetail {
  /** The object as created (create) or as it was (delete). */
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
  /** Secrets of the object: 'changed' or 'unchanged' (never their value). */
  secrets?: Record<string, 'changed' | 'unchanged'>;
  /** Anything else the action needs to be understood (counts, the reason given). */
  [key: string]: unknown;
}

export interface AuditEntry {
  /** The tenant the change belongs to; null for engine-wide ones (an administrator token). */
  tenantId: string | null;
  /** e.g. 'server.updated', 'token.created', 'oauth.sign-in-started'. */
  action: string;
  targetKind: string;
  targetId: string | null;
  detail: AuditDetail;
}

export interface AuditRow extends AuditEntry {
  id: number;
  at: Date;
  actor: Actor;
}

function actorColumns(actor: Actor): [kind: string, id: string | null, name: string] {
  if (actor.kind === 'token') return ['token', actor.tokenId, actor.name];
  return [actor.kind, null, actor.name];
}

function actorOf(kind: string, id: string | null, name: string): Actor {
  if (kind === 'token') return { kind: 'token', tokenId: id, name };
  if (kind === 'cli') return { kind: 'cli', name };
  return { kind: 'engine', name: 'engine' };
}

/** The audit log (migration 0025): appended to in the transaction of each change. */
export class AuditLogRepository {
  constructor(private readonly em: EntityManager) {}

  /** Appends one entry on behalf of the current actor (src/shared/actor.ts). */
  async record(entry: AuditEntry, actor: Actor = currentActor()): Promise<void> {
    const [kind, id, name] = actorColumns(actor);
    await this.em.query(
      `INSERT INTO audit_log (tenant_id, actor_kind, actor_id, actor_name, action, target_kind, target_id, detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)`,
      [
        entry.tenantId,
        kind,
        id,
        name,
        entry.action,
        entry.targetKind,
        entry.targetId,
        JSON.stringify(withoutNul(entry.detail)),
      ],
    );
  }

  /** Who made the tenant's first entry of `action` on `targetId` (along audit_log_tenant_idx); null if none is left. */
  async actorOf(tenantId: string, action: string, targetId: string): Promise<Actor | null> {
    const rows: Array<Record<string, unknown>> = await this.em.query(
      `SELECT actor_kind, actor_id, actor_name FROM audit_log
        WHERE tenant_id = $1 AND action = $2 AND target_id = $3 ORDER BY id LIMIT 1`,
      [tenantId, action, targetId],
    );
    const r = rows[0];
    return r ? actorOf(r.actor_kind as string, (r.actor_id as string | null) ?? null, r.actor_name as string) : null;
  }

  /**
   * Entries newest first, below `beforeId` (the cursor), at or after `since`. `tenantId`
   * undefined: every entry (administrators); a tenant id: that tenant's only.
   */
  async list(query: {
    tenantId?: string | undefined;
    since?: Date | undefined;
    beforeId?: number | undefined;
    limit: number;
  }): Promise<AuditRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.tenantId !== undefined) {
      params.push(query.tenantId);
      where.push(`tenant_id = $${params.length}`);
    }
    if (query.since !== undefined) {
      params.push(query.since);
      where.push(`at >= $${params.length}`);
    }
    if (query.beforeId !== undefined) {
      params.push(query.beforeId);
      where.push(`id < $${params.length}`);
    }
    params.push(query.limit);
    const rows: Array<Record<string, unknown>> = await this.em.query(
      `SELECT id, at, tenant_id, actor_kind, actor_id, actor_name, action, target_kind, target_id, detail
         FROM audit_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      at: new Date(r.at as string),
      tenantId: (r.tenant_id as string | null) ?? null,
      actor: actorOf(r.actor_kind as string, (r.actor_id as string | null) ?? null, r.actor_name as string),
      action: r.action as string,
      targetKind: r.target_kind as string,
      targetId: (r.target_id as string | null) ?? null,
      detail: (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as AuditDetail,
    }));
  }
}
