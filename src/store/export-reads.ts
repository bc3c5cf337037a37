import type { EntityManager } from 'typeorm';
import { MESSAGE_OF_ADDRESS, OUTBOUND_TO_ADDRESS } from './erasure-repository.js';
import type { SourceKind } from './sources/source-backend.js';

/** Where a page of an export starts: after this row (time, then id). */
export interface ExportCursor {
  at: Date;
  id: string;
}

/** An inbound message as an export lists it (no bodies: its source is the .eml). */
export interface ExportedMessage {
  id: string;
  serverId: string;
  destinationIds: string[];
  mailbox: string;
  uid: number;
  status: string;
  messageIdHeader: string | null;
  conversationId: string;
  subject: string;
  from: { address: string | null; name: string | null };
  recipients: unknown;
  inReplyTo: string | null;
  attachments: unknown;
  sentAt: Date | null;
  receivedAt: Date;
  ingestedAt: Date;
  size: number;
  sourceStore: SourceKind | null;
}

/** An outgoing message as an export lists it (its bytes were in a spool file, not kept once sent). */
export interface ExportedOutbound {
  id: string;
  destinationId: string;
  serverId: string;
  status: string;
  messageIdHeader: string;
  conversationId: string | null;
  subject: string;
  recipients: unknown;
  createdAt: Date;
  sentAt: Date | null;
}

type Row = Record<string, unknown>;

function json(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

function date(value: unknown): Date {
  return value instanceof Date ? value : new Date(value as string);
}

function dateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : date(value);
}

/**
 * Reads for `mailroom export`: a tenant's messages (all, or those from or to one address, as an
 * erasure finds them) page by page in the order they came (keyset on time and id: each page is an
 * index range scan, however large the tenant).
 */
export class ExportReads {
  constructor(private readonly em: EntityManager) {}

  async messages(
    tenantId: string,
    address: string | null,
    after: ExportCursor | null,
    limit: number,
  ): Promise<ExportedMessage[]> {
    const rows: Row[] = await this.em.query(
      `SELECT m.id, m.server_id, m.mailbox, m.uid, m.status, m.message_id_header, m.conversation_id, m.subject,
              m.from_address, m.from_name, m.recipients, m.in_reply_to, m.attachments, m.sent_at, m.received_at,
              m.ingested_at, m.size, m.source_store,
              (SELECT COALESCE(jsonb_agg(d.destination_id ORDER BY d.destination_id), '[]'::jsonb)
                 FROM inbound_deliveries d WHERE d.message_id = m.id) AS destination_ids
         FROM inbound_messages m
        WHERE m.tenant_id = $1 AND ($2::text IS NULL OR (${MESSAGE_OF_ADDRESS}))
          AND ($5::timestamptz IS NULL OR (m.ingested_at, m.id) > ($5::timestamptz, $6::uuid))
        ORDER BY m.ingested_at, m.id LIMIT $7`,
      [tenantId, address, null, null, after?.at ?? null, after?.id ?? null, limit],
    );
    return rows.map((r) => ({
      id: r.id as string,
      serverId: r.server_id as string,
      destinationIds: json(r.destination_ids) as string[],
      mailbox: r.mailbox as string,
      uid: Number(r.uid),
      status: r.status as string,
      messageIdHeader: (r.message_id_header as string | null) ?? null,
      conversationId: r.conversation_id as string,
      subject: r.subject as string,
      from: { address: (r.from_address as string | null) ?? null, name: (r.from_name as string | null) ?? null },
      recipients: json(r.recipients),
      inReplyTo: (r.in_reply_to as string | null) ?? null,
      attachments: json(r.attachments),
      sentAt: dateOrNull(r.sent_at),
      receivedAt: date(r.received_at),
      ingestedAt: date(r.ingested_at),
      size: Number(r.size),
      sourceStore: (r.source_store as SourceKind | null) ?? null,
    }));
  }

  async outbound(
    tenantId: string,
    address: string | null,
    after: ExportCursor | null,
    limit: number,
  ): Promise<ExportedOutbound[]> {
    const rows: Row[] = await this.em.query(
      `SELECT o.id, o.destination_id, o.server_id, o.status, o.message_id_header, o.conversation_id, o.subject,
              o.recipients, o.created_at, o.sent_at
         FROM outbound_messages o
        WHERE o.tenant_id = $1 AND ($2::text IS NULL OR (${OUTBOUND_TO_ADDRESS}))
          AND ($5::timestamptz IS NULL OR (o.created_at, o.id) > ($5::timestamptz, $6::uuid))
        ORDER BY o.created_at, o.id LIMIT $7`,
      [tenantId, address, null, null, after?.at ?? null, after?.id ?? null, limit],
    );
    return rows.map((r) => ({
      id: r.id as string,
      destinationId: r.destination_id as string,
      serverId: r.server_id as string,
      status: r.status as string,
      messageIdHeader: r.message_id_header as string,
      conversationId: (r.conversation_id as string | null) ?? null,
      subject: r.subject as string,
      recipients: json(r.recipients),
      createdAt: date(r.created_at),
      sentAt: dateOrNull(r.sent_at),
    }));
  }
}
