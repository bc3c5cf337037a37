import type { EntityManager } from 'typeorm';
import type { SourceKind } from './sources/source-backend.js';
import { returned } from './returned-rows.js';

/** Days each kind of a tenant's data is kept; null keeps it forever. */
export interface RetentionPolicy {
  rawSourceDays: number | null;
  messageBodyDays: number | null;
  messageDays: number | null;
  outboundDays: number | null;
  logDays: number | null;
}

/** Today's behaviour: everything is kept. */
export const KEEP_EVERYTHING: RetentionPolicy = {
  rawSourceDays: null,
  messageBodyDays: null,
  messageDays: null,
  outboundDays: null,
  logDays: null,
};

/** A message whose source a deletion took away from the database row (to delete from its backend). */
export interface RemovedSource {
  tenantId: string;
  messageId: string;
  sourceStore: SourceKind | null;
}

/** A dead letter due for deletion: its spool file goes first (through outbound), then its row. */
export interface DueDeadLetter {
  id: string;
  tenantId: string;
  destinationId: string;
}

/**
 * A message is still waiting while a delivery of it is neither claimed nor acknowledged and was
 * made after `$floor` (the operator's floor, MAILROOM_RETENTION_WAITING_FLOOR_DAYS): retention
 * leaves it alone whatever its age. Found through inbound_deliveries_message_idx.
 */
const NOT_WAITING = `NOT EXISTS (
  SELECT 1 FROM inbound_deliveries d
   WHERE d.message_id = m.id AND d.claimed_by IS NULL AND d.acked_at IS NULL AND d.created_at > $3)`;

/** [2] hours of the send log always kept: the hourly rate limit counts the last hour's sends. */
const SEND_LOG_KEEP_HOURS = 2;

type Row = Record<string, unknown>;

export function removedOf(rows: Row[]): RemovedSource[] {
  return rows.map((r) => ({
    tenantId: r.tenant_id as string,
    messageId: r.id as string,
    sourceStore: (r.source_store as SourceKind | null) ?? null,
  }));
}

/**
 * What the retention job and erasures read and delete. Every deletion takes a small batch, oldest
 * first, along an index (the `*_age_idx` of migration 0023), skips rows another deletion holds
 * (`SKIP LOCKED`) and answers what it removed, so callers loop until a batch comes back short.
 */
export class LifecycleRepository {
  constructor(private readonly em: EntityManager) {}

  async policy(tenantId: string): Promise<RetentionPolicy> {
    const rows: Row[] = await this.em.query('SELECT * FROM tenant_retention WHERE tenant_id = $1', [tenantId]);
    return rows[0] ? policyOf(rows[0]) : { ...KEEP_EVERYTHING };
  }

  async setPolicy(tenantId: string, p: RetentionPolicy): Promise<void> {
    await this.em.query(
      `INSERT INTO tenant_retention (tenant_id, raw_source_days, message_body_days, message_days, outbound_days, log_days)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (tenant_id) DO UPDATE SET raw_source_days = $2, message_body_days = $3, message_days = $4,
         outbound_days = $5, log_days = $6, updated_at = now()`,
      [tenantId, p.rawSourceDays, p.messageBodyDays, p.messageDays, p.outboundDays, p.logDays],
    );
  }

  /** Tenants with a policy that deletes something. */
  async policies(): Promise<Array<{ tenantId: string; policy: RetentionPolicy }>> {
    const rows: Row[] = await this.em.query(
      `SELECT * FROM tenant_retention
        WHERE COALESCE(raw_source_days, message_body_days, message_days, outbound_days, log_days) IS NOT NULL
        ORDER BY tenant_id`,
    );
    return rows.map((r) => ({ tenantId: r.tenant_id as string, policy: policyOf(r) }));
  }

  /** Takes away the sources of messages ingested before `cutoff` (the rows stay); PostgreSQL's are deleted here. */
  async stripSources(tenantId: string, cutoff: Date, floor: Date, limit: number): Promise<RemovedSource[]> {
    const rows: Row[] = await returned(
      this.em.query(
        `WITH due AS (
         SELECT m.id, m.tenant_id, m.source_store FROM inbound_messages m
          WHERE m.tenant_id = $1 AND m.ingested_at < $2 AND m.source_store IS NOT NULL AND ${NOT_WAITING}
          ORDER BY m.ingested_at LIMIT $4 FOR UPDATE SKIP LOCKED),
       raw AS (DELETE FROM inbound_raw r USING due WHERE r.message_id = due.id)
       UPDATE inbound_messages m SET source_store = NULL, source_size = NULL FROM due WHERE m.id = due.id
       RETURNING due.id, due.tenant_id, due.source_store`,
        [tenantId, cutoff, floor, limit],
      ),
    );
    return removedOf(rows);
  }

  /** Empties the bodies (text and HTML) of messages ingested before `cutoff`; answers how many. */
  async stripBodies(tenantId: string, cutoff: Date, floor: Date, limit: number): Promise<number> {
    const rows: Row[] = await returned(
      this.em.query(
        `WITH due AS (
         SELECT m.id FROM inbound_messages m
          WHERE m.tenant_id = $1 AND m.ingested_at < $2 AND (m.body_text IS NOT NULL OR m.body_html IS NOT NULL)
            AND ${NOT_WAITING}
          ORDER BY m.ingested_at LIMIT $4 FOR UPDATE SKIP LOCKED)
       UPDATE inbound_messages m SET body_text = NULL, body_html = NULL FROM due WHERE m.id = due.id
       RETURNING m.id`,
        [tenantId, cutoff, floor, limit],
      ),
    );
    return rows.length;
  }

  /**
   * Deletes messages ingested before `cutoff` with their deliveries, webhook rows and PostgreSQL
   * sources (cascades); answers them, for their sources elsewhere.
   */
  async deleteMessages(tenantId: string, cutoff: Date, floor: Date, limit: number): Promise<RemovedSource[]> {
    const rows: Row[] = await returned(
      this.em.query(
        `WITH due AS (
         SELECT m.id FROM inbound_messages m
          WHERE m.tenant_id = $1 AND m.ingested_at < $2 AND ${NOT_WAITING}
          ORDER BY m.ingested_at LIMIT $4 FOR UPDATE SKIP LOCKED)
       DELETE FROM inbound_messages m USING due WHERE m.id = due.id
       RETURNING m.id, m.tenant_id, m.source_store`,
        [tenantId, cutoff, floor, limit],
      ),
    );
    return removedOf(rows);
  }

  /** Deletes sent and failed outgoing records (not dead letters, not mail still waiting) created before `cutoff`. */
  async deleteOutbound(tenantId: string, cutoff: Date, limit: number): Promise<number> {
    const rows: Row[] = await returned(
      this.em.query(
        `DELETE FROM outbound_messages WHERE id IN (
         SELECT id FROM outbound_messages
          WHERE tenant_id = $1 AND created_at < $2 AND status IN ('sent', 'failed') AND dead_lettered_at IS NULL
          ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING id`,
        [tenantId, cutoff, limit],
      ),
    );
    return rows.length;
  }

  /** Dead letters created before `cutoff`, oldest first. */
  async dueDeadLetters(tenantId: string, cutoff: Date, limit: number): Promise<DueDeadLetter[]> {
    const rows: Row[] = await this.em.query(
      `SELECT id, tenant_id, destination_id FROM outbound_messages
        WHERE tenant_id = $1 AND created_at < $2 AND dead_lettered_at IS NOT NULL
        ORDER BY created_at LIMIT $3`,
      [tenantId, cutoff, limit],
    );
    return rows.map((r) => ({
      id: r.id as string,
      tenantId: r.tenant_id as string,
      destinationId: r.destination_id as string,
    }));
  }

  /** Deletes outgoing records by id (their spool files already gone); answers how many. */
  async deleteOutboundRows(tenantId: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const rows: Row[] = await returned(
      this.em.query(
        `DELETE FROM outbound_messages WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND status IN ('sent', 'failed')
       RETURNING id`,
        [tenantId, ids],
      ),
    );
    return rows.length;
  }

  /** Deletes delivered webhook rows created before `cutoff`; answers how many. */
  async deleteWebhookLog(tenantId: string, cutoff: Date, limit: number): Promise<number> {
    const rows: Row[] = await returned(
      this.em.query(
        `DELETE FROM webhook_deliveries w USING (
         SELECT destination_id, seq FROM webhook_deliveries
          WHERE tenant_id = $1 AND created_at < $2 AND delivered_at IS NOT NULL
          ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
        WHERE w.destination_id = due.destination_id AND w.seq = due.seq
       RETURNING w.seq`,
        [tenantId, cutoff, limit],
      ),
    );
    return rows.length;
  }

  /**
   * Deletes the send log of the tenant's servers before `cutoff`, but never the last
   * SEND_LOG_KEEP_HOURS (what the hourly rate limit counts) nor a place still reserved.
   */
  async deleteSendLog(tenantId: string, cutoff: Date, now: Date, limit: number): Promise<number> {
    const keepFrom = new Date(now.getTime() - SEND_LOG_KEEP_HOURS * 3_600_000);
    const rows: Row[] = await returned(
      this.em.query(
        `DELETE FROM smtp_send_log WHERE id IN (
         SELECT l.id FROM smtp_send_log l
          WHERE l.server_id IN (SELECT id FROM email_servers WHERE tenant_id = $1)
            AND l.sent_at < LEAST($2::timestamptz, $3::timestamptz) AND l.recorded
          LIMIT $4)
       RETURNING id`,
        [tenantId, cutoff, keepFrom, limit],
      ),
    );
    return rows.length;
  }

  /** Takes or renews the lease of a background job; answers whether this owner holds it. */
  async holdJob(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const rows: Row[] = await this.em.query(
      `INSERT INTO job_leases (name, owner, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3::double precision / 1000))
       ON CONFLICT (name) DO UPDATE SET owner = $2, expires_at = EXCLUDED.expires_at
        WHERE job_leases.owner = $2 OR job_leases.expires_at < now()
       RETURNING owner`,
      [name, owner, ttlMs],
    );
    return rows.length > 0;
  }

  /** Counts and bytes of stored messages and sources, of one tenant or of each. */
  storage(tenantId?: string): Promise<Map<string, StorageUse>> {
    return storageUse(this.em, tenantId);
  }

  async releaseJob(name: string, owner: string): Promise<void> {
    await this.em.query('DELETE FROM job_leases WHERE name = $1 AND owner = $2', [name, owner]);
  }

  /** Records what a retention run deleted of a tenant, keeping the tenant's `keep` newest runs. */
  async recordRun(run: RetentionRun, keep: number): Promise<void> {
    await this.em.query(
      `INSERT INTO retention_runs (tenant_id, started_at, finished_at, removed) VALUES ($1, $2, $3, $4::jsonb)`,
      [run.tenantId, run.startedAt, run.finishedAt, JSON.stringify(run.removed)],
    );
    await this.em.query(
      `DELETE FROM retention_runs WHERE tenant_id = $1 AND id NOT IN (
         SELECT id FROM retention_runs WHERE tenant_id = $1 ORDER BY started_at DESC LIMIT $2)`,
      [run.tenantId, keep],
    );
  }

  /** A tenant's retention runs, newest first. */
  async runs(tenantId: string, limit: number): Promise<RetentionRun[]> {
    const rows: Row[] = await this.em.query(
      'SELECT * FROM retention_runs WHERE tenant_id = $1 ORDER BY started_at DESC LIMIT $2',
      [tenantId, limit],
    );
    return rows.map((r) => ({
      tenantId: r.tenant_id as string,
      startedAt: new Date(r.started_at as string),
      finishedAt: new Date(r.finished_at as string),
      removed: r.removed as Record<string, number>,
    }));
  }
}

/** What one retention run deleted of one tenant (counts per kind). */
export interface RetentionRun {
  tenantId: string;
  startedAt: Date;
  finishedAt: Date;
  removed: Record<string, number>;
}

function policyOf(r: Row): RetentionPolicy {
  const n = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  return {
    rawSourceDays: n(r.raw_source_days),
    messageBodyDays: n(r.message_body_days),
    messageDays: n(r.message_days),
    outboundDays: n(r.outbound_days),
    logDays: n(r.log_days),
  };
}

/** A tenant's stored inbound messages and their sources. */
export interface StorageUse {
  messages: number;
  /** Bytes of the messages' bodies (text and HTML) in the database. */
  messageBytes: number;
  sources: number;
  sourceBytes: number;
  /** Sources per backend. */
  sourcesByStore: Record<string, { count: number; bytes: number }>;
}

/** Counts and bytes of stored messages and sources, of one tenant or (grouped) all. */
export async function storageUse(em: EntityManager, tenantId?: string): Promise<Map<string, StorageUse>> {
  const rows: Row[] = await em.query(
    `SELECT tenant_id, source_store, count(*) AS messages,
            COALESCE(sum(COALESCE(octet_length(body_text), 0) + COALESCE(octet_length(body_html), 0)), 0) AS message_bytes,
            COALESCE(sum(source_size), 0) AS source_bytes
       FROM inbound_messages ${tenantId === undefined ? '' : 'WHERE tenant_id = $1'}
      GROUP BY tenant_id, source_store`,
    tenantId === undefined ? [] : [tenantId],
  );
  const use = new Map<string, StorageUse>();
  for (const r of rows) {
    const id = r.tenant_id as string;
    const u = use.get(id) ?? { messages: 0, messageBytes: 0, sources: 0, sourceBytes: 0, sourcesByStore: {} };
    const count = Number(r.messages);
    u.messages += count;
    u.messageBytes += Number(r.message_bytes);
    if (r.source_store !== null) {
      u.sources += count;
      u.sourceBytes += Number(r.source_bytes);
      u.sourcesByStore[r.source_store as string] = { count, bytes: Number(r.source_bytes) };
    }
    use.set(id, u);
  }
  return use;
}
