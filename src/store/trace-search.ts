import type { EntityManager } from 'typeorm';

/** What the trace search filters on; every given filter must hold. */
export interface TraceFilters {
  /** The Message-ID header (with or without angle brackets). */
  messageId?: string | undefined;
  /** Sender or any recipient. */
  address?: string | undefined;
  /** A part of the subject, case ignored. */
  subject?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  destinationId?: string | undefined;
  serverId?: string | undefined;
  status?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  /** Only inbound or only outbound mail (a destination's outbound list). */
  kind?: 'inbound' | 'outbound' | undefined;
}

export interface TraceHit {
  kind: 'inbound' | 'outbound';
  id: string;
  at: Date;
  subject: string;
  from: string | null;
  to: string[];
  status: string;
  serverId: string;
  messageIdHeader: string | null;
}

/** Where the next page starts: the (time, id) of the last hit of this one. */
export interface TraceCursor {
  at: Date;
  id: string;
}

function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function bareMessageId(value: string): string {
  return value.trim().replace(/^<|>$/g, '');
}

/**
 * The search across inbound and outbound mail of one tenant, newest first: one statement, each
 * side filtered and limited on its own indexes (migrations 0027 and 0041: Message-ID, age,
 * sender, recipients, subject trigrams), then merged. The message rows are
 * the source: what the trace adds is read per message, on its page.
 */
export class TraceSearchRepository {
  constructor(private readonly em: EntityManager) {}

  async search(tenantId: string, f: TraceFilters, cursor: TraceCursor | null, limit: number): Promise<TraceHit[]> {
    const { sql, params } = await this.statement(tenantId, f, cursor, limit);
    const rows: Array<Record<string, unknown>> = await this.em.query(sql, params);
    return rows.map((r) => ({
      kind: r.kind as 'inbound' | 'outbound',
      id: r.id as string,
      at: new Date(r.at as string),
      subject: r.subject as string,
      from: (r.sender as string | null) ?? null,
      to: (typeof r.recipients === 'string' ? JSON.parse(r.recipients) : r.recipients) as string[],
      status: r.status as string,
      serverId: r.server_id as string,
      messageIdHeader: (r.message_id_header as string | null) ?? null,
    }));
  }

  /** The statement `search` runs (a test reads its plan). */
  async statement(
    tenantId: string,
    f: TraceFilters,
    cursor: TraceCursor | null,
    limit: number,
  ): Promise<{ sql: string; params: unknown[] }> {
    const params: unknown[] = [tenantId];
    const p = (value: unknown): string => {
      params.push(value);
      return `$${params.length}`;
    };
    const inbound: string[] = ['m.tenant_id = $1'];
    const outbound: string[] = ['o.tenant_id = $1'];
    if (f.messageId !== undefined) {
      const id = bareMessageId(f.messageId);
      inbound.push(`m.message_id_header = ${p(id)}`);
      outbound.push(`o.message_id_header = ${p(id)}`);
    }
    if (f.subject !== undefined) {
      const like = p(likePattern(f.subject));
      inbound.push(`m.subject ILIKE ${like}`);
      outbound.push(`o.subject ILIKE ${like}`);
    }
    // Containment of the whole document, which its GIN index (migration 0041) serves; the same as
    // `recipients->'to' @> [{"address": …}]`.
    const inboundTo = (address: string): string =>
      `(m.recipients @> jsonb_build_object('to', jsonb_build_array(jsonb_build_object('address', ${address}::text)))
        OR m.recipients @> jsonb_build_object('cc', jsonb_build_array(jsonb_build_object('address', ${address}::text))))`;
    const outboundTo = (address: string): string => `o.recipients @> jsonb_build_array(${address}::text)`;
    // Outgoing mail is from its destination's address: the destinations are looked up first, so
    // that an address no destination has (a customer's) leaves only the recipients' index to read,
    // and the planner knows how common a destination that has it is.
    const outboundFrom = async (address: string): Promise<string> => {
      const ids = (
        (await this.em.query(`SELECT id FROM destinations WHERE tenant_id = $1 AND lower(address) = $2`, [
          tenantId,
          address,
        ])) as Array<{ id: string }>
      ).map((r) => r.id);
      return ids.length === 0 ? 'false' : `o.destination_id = ANY (${p(ids)}::uuid[])`;
    };
    // A sender as written or lower-cased (the index on (tenant_id, from_address) serves both).
    const sender = (address: string): string => {
      const given = p(address.trim());
      const lower = p(address.trim().toLowerCase());
      return `m.from_address IN (${given}, ${lower})`;
    };
    if (f.address !== undefined) {
      const a = p(f.address.trim().toLowerCase());
      inbound.push(`(${sender(f.address)} OR ${inboundTo(a)})`);
      outbound.push(`(${outboundTo(a)} OR ${await outboundFrom(f.address.trim().toLowerCase())})`);
    }
    if (f.from !== undefined) {
      inbound.push(sender(f.from));
      outbound.push(await outboundFrom(f.from.trim().toLowerCase()));
    }
    if (f.to !== undefined) {
      const a = p(f.to.trim().toLowerCase());
      inbound.push(inboundTo(a));
      outbound.push(outboundTo(a));
    }
    if (f.destinationId !== undefined) {
      const d = p(f.destinationId);
      inbound.push(
        `EXISTS (SELECT 1 FROM inbound_deliveries x WHERE x.message_id = m.id AND x.destination_id = ${d}::uuid)`,
      );
      outbound.push(`o.destination_id = ${d}::uuid`);
    }
    if (f.serverId !== undefined) {
      const s = p(f.serverId);
      inbound.push(`m.server_id = ${s}::uuid`);
      outbound.push(`o.server_id = ${s}::uuid`);
    }
    if (f.status !== undefined) {
      const s = p(f.status);
      inbound.push(`m.status = ${s}`);
      outbound.push(`o.status = ${s}`);
    }
    if (f.since !== undefined) {
      const s = p(f.since);
      inbound.push(`m.ingested_at >= ${s}`);
      outbound.push(`o.created_at >= ${s}`);
    }
    if (f.until !== undefined) {
      const u = p(f.until);
      inbound.push(`m.ingested_at < ${u}`);
      outbound.push(`o.created_at < ${u}`);
    }
    if (f.kind === 'inbound') outbound.push('false');
    if (f.kind === 'outbound') inbound.push('false');
    if (cursor !== null) {
      const at = p(cursor.at);
      const id = p(cursor.id);
      inbound.push(`(m.ingested_at, m.id) < (${at}::timestamptz, ${id}::uuid)`);
      outbound.push(`(o.created_at, o.id) < (${at}::timestamptz, ${id}::uuid)`);
    }
    const n = p(limit);
    const sql = `(SELECT 'inbound' AS kind, m.id, m.ingested_at AS at, m.subject, m.from_address AS sender,
               (SELECT COALESCE(jsonb_agg(e->>'address'), '[]'::jsonb)
                  FROM jsonb_array_elements(m.recipients->'to') e) AS recipients,
               m.status, m.server_id, m.message_id_header
          FROM inbound_messages m WHERE ${inbound.join(' AND ')}
         ORDER BY m.ingested_at DESC, m.id DESC LIMIT ${n})
       UNION ALL
       (SELECT 'outbound', o.id, o.created_at, o.subject,
               (SELECT d.address FROM destinations d WHERE d.id = o.destination_id), o.recipients,
               o.status, o.server_id, o.message_id_header
          FROM outbound_messages o WHERE ${outbound.join(' AND ')}
         ORDER BY o.created_at DESC, o.id DESC LIMIT ${n})
       ORDER BY at DESC, id DESC LIMIT ${n}`;
    return { sql, params };
  }
}
