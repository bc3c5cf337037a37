import type { EntityManager } from 'typeorm';
import { removedOf, type RemovedSource } from './lifecycle-repositories.js';
import { returned } from './returned-rows.js';

type Row = Record<string, unknown>;

/** An erasure's receipt as stored (no address: its salted hash). */
export interface ErasureRow {
  id: string;
  tenantId: string;
  addressHash: string;
  salt: string;
  since: Date | null;
  until: Date | null;
  counts: Record<string, number>;
  createdAt: Date;
  finishedAt: Date | null;
}

/**
 * Whether a message is from or to `$2` (lower-case): its sender, a To or Cc address, a
 * Delivered-To or X-Original-To. Within the tenant `$1` and the ingest range `$3`..`$4`.
 */
export const MESSAGE_OF_ADDRESS = `m.tenant_id = $1
  AND ($3::timestamptz IS NULL OR m.ingested_at >= $3) AND ($4::timestamptz IS NULL OR m.ingested_at < $4)
  AND (lower(m.from_address) = $2
    OR EXISTS (SELECT 1 FROM jsonb_array_elements(m.recipients -> 'to') a WHERE lower(a ->> 'address') = $2)
    OR EXISTS (SELECT 1 FROM jsonb_array_elements(m.recipients -> 'cc') a WHERE lower(a ->> 'address') = $2)
    OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(m.recipients -> 'deliveredTo') a WHERE lower(a) = $2)
    OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(m.recipients -> 'xOriginalTo') a WHERE lower(a) = $2))`;

/** Whether an outgoing message is to `$2`, within the tenant and the creation range. */
export const OUTBOUND_TO_ADDRESS = `o.tenant_id = $1
  AND ($3::timestamptz IS NULL OR o.created_at >= $3) AND ($4::timestamptz IS NULL OR o.created_at < $4)
  AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(o.recipients) r WHERE lower(r) = $2)`;

function erasureOf(r: Row): ErasureRow {
  return {
    id: r.id as string,
    tenantId: r.tenant_id as string,
    addressHash: r.address_hash as string,
    salt: r.salt as string,
    since: r.since ? new Date(r.since as string) : null,
    until: r.until ? new Date(r.until as string) : null,
    counts: (typeof r.counts === 'string' ? JSON.parse(r.counts) : r.counts) as Record<string, number>,
    createdAt: new Date(r.created_at as string),
    finishedAt: r.finished_at ? new Date(r.finished_at as string) : null,
  };
}

/** Erasures: the receipts, and the deletions they make. */
export class ErasureRepository {
  constructor(private readonly em: EntityManager) {}

  async insert(row: Omit<ErasureRow, 'createdAt' | 'finishedAt' | 'counts'>): Promise<ErasureRow> {
    const rows: Row[] = await this.em.query(
      `INSERT INTO erasures (id, tenant_id, address_hash, salt, since, until) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [row.id, row.tenantId, row.addressHash, row.salt, row.since, row.until],
    );
    return erasureOf(rows[0] as Row);
  }

  async get(tenantId: string, id: string): Promise<ErasureRow | null> {
    const rows: Row[] = await this.em.query('SELECT * FROM erasures WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
    return rows[0] ? erasureOf(rows[0]) : null;
  }

  async list(tenantId: string): Promise<ErasureRow[]> {
    const rows: Row[] = await this.em.query('SELECT * FROM erasures WHERE tenant_id = $1 ORDER BY created_at', [
      tenantId,
    ]);
    return rows.map(erasureOf);
  }

  /** Adds to the counts (kept as the erasure goes: a crash loses none of what was done). */
  async addCounts(id: string, counts: Record<string, number>): Promise<void> {
    await this.em.query(
      `UPDATE erasures SET counts = (
         SELECT jsonb_object_agg(k, COALESCE((counts ->> k)::bigint, 0) + COALESCE((($2::jsonb) ->> k)::bigint, 0))
           FROM (SELECT jsonb_object_keys(counts || $2::jsonb) AS k) keys)
        WHERE id = $1`,
      [id, JSON.stringify(counts)],
    );
  }

  async finish(id: string, at: Date): Promise<void> {
    await this.em.query('UPDATE erasures SET finished_at = $2 WHERE id = $1', [id, at]);
  }

  /**
   * Deletes up to `limit` of the tenant's messages from or to the address (lower-case) with their
   * deliveries, webhook rows and PostgreSQL sources; answers them and what went with them. Their
   * sources outside the database are listed for the erasure (`erasure_sources`) by the same
   * statement: run it in the transaction that counts them, and a crash loses none of them.
   */
  async deleteMessages(
    erasureId: string,
    tenantId: string,
    address: string,
    since: Date | null,
    until: Date | null,
    limit: number,
  ): Promise<{ removed: RemovedSource[]; deliveries: number; webhookRows: number }> {
    const due: Row[] = await this.em.query(`SELECT m.id FROM inbound_messages m WHERE ${MESSAGE_OF_ADDRESS} LIMIT $5`, [
      tenantId,
      address,
      since,
      until,
      limit,
    ]);
    if (due.length === 0) return { removed: [], deliveries: 0, webhookRows: 0 };
    const ids = due.map((r) => r.id as string);
    const [counted] = (await this.em.query(
      `SELECT (SELECT count(*) FROM inbound_deliveries WHERE message_id = ANY($1::uuid[])) AS deliveries,
              (SELECT count(*) FROM webhook_deliveries WHERE message_id = ANY($1::uuid[])) AS webhook_rows`,
      [ids],
    )) as Row[];
    const rows: Row[] = await returned(
      this.em.query(
        `WITH gone AS (
           DELETE FROM inbound_messages m WHERE m.id = ANY($1::uuid[]) RETURNING m.id, m.tenant_id, m.source_store),
         listed AS (
           INSERT INTO erasure_sources (erasure_id, tenant_id, message_id, source_store)
           SELECT $2, tenant_id, id, source_store FROM gone WHERE source_store IN ('directory', 's3')
           ON CONFLICT DO NOTHING)
         SELECT id, tenant_id, source_store FROM gone`,
        [ids, erasureId],
      ),
    );
    // Their trace goes with them (trace_events has no foreign key: a deleted message keeps its own).
    await this.em.query('DELETE FROM trace_events WHERE tenant_id = $1 AND message_id = ANY($2::uuid[])', [
      tenantId,
      rows.map((r) => r.id),
    ]);
    return {
      removed: removedOf(rows),
      deliveries: Number(counted?.deliveries ?? 0),
      webhookRows: Number(counted?.webhook_rows ?? 0),
    };
  }

  /** Sources outside the database an erasure has yet to delete (their rows are gone). */
  async listedSources(erasureId: string, limit: number): Promise<RemovedSource[]> {
    const rows: Row[] = await this.em.query(
      `SELECT message_id AS id, tenant_id, source_store FROM erasure_sources WHERE erasure_id = $1
        ORDER BY message_id LIMIT $2`,
      [erasureId, limit],
    );
    return removedOf(rows);
  }

  /** Takes deleted sources off the erasure's list. */
  async forgetSources(erasureId: string, messageIds: readonly string[]): Promise<void> {
    if (messageIds.length === 0) return;
    await this.em.query('DELETE FROM erasure_sources WHERE erasure_id = $1 AND message_id = ANY($2::uuid[])', [
      erasureId,
      messageIds,
    ]);
  }

  /** The tenant's outgoing messages to the address (lower-case), up to `limit`. */
  async outboundTo(
    tenantId: string,
    address: string,
    since: Date | null,
    until: Date | null,
    limit: number,
  ): Promise<Array<{ id: string; destinationId: string; status: string; deadLettered: boolean }>> {
    const rows: Row[] = await this.em.query(
      `SELECT o.id, o.destination_id, o.status, o.dead_lettered_at IS NOT NULL AS dead
         FROM outbound_messages o WHERE ${OUTBOUND_TO_ADDRESS} ORDER BY o.created_at LIMIT $5`,
      [tenantId, address, since, until, limit],
    );
    return rows.map((r) => ({
      id: r.id as string,
      destinationId: r.destination_id as string,
      status: r.status as string,
      deadLettered: r.dead === true,
    }));
  }

  /** Deletes outgoing records by id, whatever their status (the caller made sure none is on its way). */
  async deleteOutbound(tenantId: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    await this.em.query('DELETE FROM outbound_requests WHERE outbound_id = ANY($1::uuid[]) AND done_at IS NOT NULL', [
      ids,
    ]);
    const rows: Row[] = await returned(
      this.em.query(
        `DELETE FROM outbound_messages WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND status <> 'sending' RETURNING id`,
        [tenantId, ids],
      ),
    );
    await this.em.query('DELETE FROM trace_events WHERE tenant_id = $1 AND message_id = ANY($2::uuid[])', [
      tenantId,
      rows.map((r) => r.id),
    ]);
    return rows.length;
  }

  /**
   * Replaces the address (lower-case) wherever it is quoted in the details of the tenant's
   * remaining trace events and audit entries (an SMTP reply quoting a recipient, an older entry)
   * by `[erased]`; answers how many rows changed. Done on the parsed JSON, string by string, so
   * the details stay valid whatever the address holds.
   */
  async scrubDetails(tenantId: string, address: string): Promise<number> {
    let changed = 0;
    for (const table of ['trace_events', 'audit_log'] as const) {
      const rows: Row[] = await this.em.query(
        `SELECT id, detail FROM ${table} WHERE tenant_id = $1 AND strpos(lower(detail::text), $2) > 0`,
        [tenantId, address],
      );
      for (const r of rows) {
        const detail: unknown = typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail;
        await this.em.query(`UPDATE ${table} SET detail = $2::jsonb WHERE id = $1`, [
          r.id,
          JSON.stringify(scrubbed(detail, address)),
        ]);
        changed += 1;
      }
    }
    return changed;
  }

  /** Deletes the tenant's alerts that quote the address (an alert may name a message's sender). */
  async deleteAlerts(tenantId: string, address: string): Promise<number> {
    const rows: Row[] = await returned(
      this.em.query(
        `DELETE FROM alerts WHERE tenant_id = $1 AND (strpos(lower(message), $2) > 0 OR strpos(lower(details::text), $2) > 0)
       RETURNING id`,
        [tenantId, address],
      ),
    );
    return rows.length;
  }
}

/** `value` with every occurrence of `address` (lower-case) in its strings, keys included, replaced. */
export function scrubbed(value: unknown, address: string): unknown {
  const pattern = new RegExp(address.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'giu');
  const erase = (text: string): string => text.replace(pattern, '[erased]');
  if (typeof value === 'string') return erase(value);
  if (Array.isArray(value)) return value.map((v) => scrubbed(v, address));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [erase(k), scrubbed(v, address)]));
  }
  return value;
}
