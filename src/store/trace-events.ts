import type { EntityManager } from 'typeorm';
import { currentActor, type Actor } from '../shared/actor.js';
import { withoutNul } from './inbound-repositories.js';

/**
 * The message trace (migration 0026): compact events of what happened to an inbound or an
 * outbound message, each written by the statement (or in the transaction) that makes the change,
 * so that the trace never says what did not happen. What the message rows hold already (mailbox
 * and UID, classification, quarantine reason, current status) is read from them, not copied here.
 */

/** The event an inbound message is stored with: how it was routed, or why it was not. */
export interface InboundTrace {
  type: 'routed' | 'unrouted' | 'quarantined' | 'duplicate' | 'heartbeat';
  /** routed: `{ destinations: [{ id, header, address } | { id, default: true }] }`; otherwise null. */
  detail: Record<string, unknown> | null;
}

export interface TraceEventInput {
  tenantId: string;
  /** inbound_messages.id or outbound_messages.id. */
  messageId: string;
  type: string;
  detail: Record<string, unknown> | null;
  /** [the database's now()] when it happened. */
  at?: Date;
}

export interface TraceEventRow {
  id: number;
  messageId: string;
  at: Date;
  type: string;
  detail: Record<string, unknown> | null;
}

/** Who did it, as a trace event names them: the token's name and id, or "CLI (user)". */
export function actorDetail(actor: Actor = currentActor()): { by: string; tokenId?: string } {
  return actor.kind === 'token' && actor.tokenId !== null
    ? { by: actor.name, tokenId: actor.tokenId }
    : { by: actor.name };
}

/**
 * `INSERT INTO trace_events … SELECT` for a statement's CTE: `source` must yield `tenant_id`,
 * `message_id`, `type` and `detail` (jsonb) columns, and `at` unless `atExpression` is given.
 */
export function traceInsert(source: string, atExpression = 'at'): string {
  return `INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
          SELECT tenant_id, message_id, ${atExpression}, type, detail FROM ${source}`;
}

/** Id of events derived from other rows: after every stored event of the same instant. */
const DERIVED_ID = '9223372036854775807::bigint';

function rowOf(r: Record<string, unknown>): TraceEventRow {
  return {
    id: Number(r.id),
    messageId: r.message_id as string,
    at: new Date(r.at as string),
    type: r.type as string,
    detail: (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as Record<string, unknown> | null,
  };
}

export class TraceRepository {
  constructor(private readonly em: EntityManager) {}

  /** Appends events in one statement (inside the caller's transaction when it has one). */
  async append(events: readonly TraceEventInput[]): Promise<void> {
    if (events.length === 0) return;
    const batch = events.map((e) =>
      withoutNul({
        tenant_id: e.tenantId,
        message_id: e.messageId,
        at: e.at?.toISOString() ?? null,
        type: e.type,
        detail: e.detail,
      }),
    );
    await this.em.query(
      `INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
       SELECT tenant_id, message_id, COALESCE(at, now()), type, detail
         FROM jsonb_to_recordset($1::jsonb) AS v (tenant_id uuid, message_id uuid, at timestamptz, type text, detail jsonb)`,
      [JSON.stringify(batch)],
    );
  }

  /**
   * The events of a tenant's message, oldest first; with `withReplies`, also those of the replies
   * accepted to it (their `reply-accepted` events name them), so that one timeline shows them.
   * An inbound message's `webhook-delivered` events come from its webhook rows (delivered_at,
   * attempts, last_status): the delivery's own record, written once on the hot path.
   */
  async timeline(tenantId: string, messageId: string, withReplies: boolean): Promise<TraceEventRow[]> {
    const rows: Array<Record<string, unknown>> = await this.em.query(
      withReplies
        ? `SELECT id, message_id, at, type, detail FROM trace_events
            WHERE tenant_id = $1 AND (message_id = $2 OR message_id IN (
              SELECT (detail->>'outboundId')::uuid FROM trace_events
               WHERE tenant_id = $1 AND message_id = $2 AND type = 'reply-accepted'))
           UNION ALL
           SELECT ${DERIVED_ID} AS id, message_id, delivered_at AS at, 'webhook-delivered' AS type,
                  jsonb_build_object('destinationId', destination_id::text, 'attempt', attempts,
                                     'status', last_status) AS detail
             FROM webhook_deliveries
            WHERE tenant_id = $1 AND message_id = $2 AND delivered_at IS NOT NULL
            ORDER BY at, id`
        : `SELECT id, message_id, at, type, detail FROM trace_events
            WHERE tenant_id = $1 AND message_id = $2 ORDER BY at, id`,
      [tenantId, messageId],
    );
    return rows.map(rowOf);
  }
}
