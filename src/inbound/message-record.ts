import { createHash } from 'node:crypto';
import { HEARTBEAT_HEADER, LOOP_HEADER } from '../shared/mail-headers.js';
import type { NewInboundMessage } from '../store/inbound-repositories.js';
import type { DestinationRow, EmailServerRow, InboundMessageRow } from '../store/rows.js';
import type { InboundTrace } from '../store/trace-events.js';
import { newId } from '../store/store.js';
import type { MessageMeta } from './imap-session.js';
import { headerNaming, recipientAddresses } from './message/addresses.js';
import { classifyMessage } from './message/classify.js';
import type { ParseResult } from './message/parse.js';
import { isStorableDate } from './message/parsed-message.js';
import { routeMessage } from './message/route.js';

/** Parsed headers are keyed by lower-case name. */
const HEARTBEAT_KEY = HEARTBEAT_HEADER.toLowerCase();

export interface MessageParser {
  parse(raw: Buffer): Promise<ParseResult>;
}

export interface BuildInput {
  server: EmailServerRow;
  mailbox: string;
  uidValidity: number;
  meta: MessageMeta;
  /** Full source; null when the message was too large to fetch. */
  source: Buffer | null;
  /** Header block of a too-large message (for its subject and sender), when it could be read. */
  header: Buffer | null;
  /** The parser's verdict on `source`. */
  parsed: ParseResult;
  /** The server's monitored destinations. */
  destinations: DestinationRow[];
  /** Where a message matching none of them goes (a destination of this server), or null: unrouted. */
  defaultDestinationId: string | null;
  messageIdDomain: string;
  lookups: {
    /** Whether a message with this dedupe key is already stored (or earlier in the same batch). */
    isDuplicate(dedupeKey: string): boolean;
    /** The conversation of a stored message with one of these Message-IDs, if any. */
    conversationOf(messageIds: string[]): string | null;
  };
}

/** What a fetched message parses to; a message too large to fetch never reaches the parser. */
export function parseFetched(
  parser: MessageParser,
  source: Buffer | null,
  size: number,
  maxBytes: number,
): Promise<ParseResult> {
  if (source !== null) return parser.parse(source);
  return Promise.resolve({
    ok: false,
    reason: 'too-large',
    detail: `${size} bytes is over the limit of ${maxBytes}; the message stays in the mailbox`,
  });
}

/** The keys a parsed message is looked up by: its dedupe key and the Message-IDs it replies to. */
export function lookupKeysOf(parsed: ParseResult): { dedupeKey: string | null; threadIds: string[] } {
  if (!parsed.ok) return { dedupeKey: null, threadIds: [] };
  const m = parsed.message;
  return {
    dedupeKey: m.messageId ? `mid:${m.messageId.toLowerCase()}` : `hash:${m.headerHash}`,
    threadIds: [m.inReplyTo, ...m.references].filter((x): x is string => typeof x === 'string' && x !== ''),
  };
}

export interface BuiltMessage {
  row: NewInboundMessage;
  destinationIds: string[];
  heartbeatToken: string | null;
  /** The trace event stored with the row: how it was routed (the row holds the rest). */
  trace: InboundTrace;
}

const NOT_CLASSIFIED = { autoReply: false, bounce: false, loop: false, reasons: [] };

/**
 * Turns one fetched and parsed message into the row to store and the destinations it goes to:
 * classify, dedupe, thread into a conversation, route. Pure. Never throws for a bad message: what
 * could not be parsed becomes a quarantined row with the reason.
 */
export function buildMessageRow(input: BuildInput): BuiltMessage {
  const { server, meta, source } = input;
  // Rows are written as one object literal each (no spread of shared fields): ten thousand
  // messages a second go through here, and a literal keeps one fast object shape.
  const id = newId();
  const parsed = input.parsed;

  if (!parsed.ok) {
    const digest = createHash('sha256')
      .update(source ?? input.header ?? Buffer.from(`${input.mailbox}:${input.uidValidity}:${meta.uid}`))
      .update(String(meta.size))
      .digest('hex');
    const headerFields = input.header ? quickHeaderFields(input.header) : { subject: '', from: null };
    return {
      row: {
        id,
        tenantId: server.tenantId,
        serverId: server.id,
        mailbox: input.mailbox,
        uidValidity: input.uidValidity,
        uid: meta.uid,
        status: 'quarantined',
        quarantineReason: `${parsed.reason}: ${parsed.detail}`,
        messageIdHeader: null,
        dedupeKey: `raw:${digest}`,
        conversationId: newId(),
        subject: headerFields.subject,
        fromAddress: headerFields.from,
        fromName: null,
        recipients: { to: [], cc: [], deliveredTo: [], xOriginalTo: [] },
        sentAt: null,
        classification: NOT_CLASSIFIED,
        inReplyTo: null,
        references: [],
        bodyText: null,
        bodyHtml: null,
        attachments: [],
        receivedAt: meta.internalDate,
        size: meta.size,
        emailId: meta.emailId,
      },
      destinationIds: [],
      heartbeatToken: null,
      trace: { type: 'quarantined', detail: null },
    };
  }

  const m = parsed.message;
  const { dedupeKey, threadIds } = lookupKeysOf(parsed) as { dedupeKey: string; threadIds: string[] };
  const heartbeatToken = m.headers[HEARTBEAT_KEY] ?? null;
  const classification = classifyMessage(
    m.headers,
    { from: m.from?.address ?? null, messageId: m.messageId, inReplyTo: m.inReplyTo },
    { ownMessageIdDomain: input.messageIdDomain, loopHeaderName: LOOP_HEADER },
  );
  const duplicate = input.lookups.isDuplicate(dedupeKey);
  let destinationIds: string[] = [];
  let status: InboundMessageRow['status'];
  let trace: InboundTrace;
  if (heartbeatToken !== null) {
    status = 'heartbeat';
    trace = { type: 'heartbeat', detail: null };
  } else if (duplicate) {
    status = 'duplicate';
    trace = { type: 'duplicate', detail: null };
  } else {
    const decision = routeMessage(
      recipientAddresses(m),
      input.destinations.map((d) => ({ id: d.id, addressKey: d.address, monitored: d.monitored })),
      input.defaultDestinationId,
    );
    destinationIds = decision.destinationIds;
    status = decision.unrouted ? 'unrouted' : 'routed';
    trace = decision.unrouted
      ? { type: 'unrouted', detail: null }
      : {
          type: 'routed',
          detail: {
            destinations:
              decision.matched.length > 0
                ? decision.matched.map((d) => ({
                    id: d.destinationId,
                    header: headerNaming(m, d.address),
                    address: d.address,
                  }))
                : destinationIds.map((id) => ({ id, default: true })),
          },
        };
  }
  const conversationId = input.lookups.conversationOf(threadIds) ?? newId();
  return {
    row: {
      id,
      tenantId: server.tenantId,
      serverId: server.id,
      mailbox: input.mailbox,
      uidValidity: input.uidValidity,
      uid: meta.uid,
      status,
      quarantineReason: null,
      messageIdHeader: m.messageId,
      dedupeKey,
      conversationId,
      subject: m.subject,
      fromAddress: m.from?.address ?? null,
      fromName: m.from?.name || null,
      recipients: { to: m.to, cc: m.cc, deliveredTo: m.deliveredTo, xOriginalTo: m.xOriginalTo },
      sentAt: m.date ? new Date(m.date) : null,
      classification,
      inReplyTo: m.inReplyTo,
      references: m.references,
      bodyText: m.text,
      bodyHtml: m.html,
      attachments: m.attachments,
      receivedAt: meta.internalDate,
      size: meta.size,
      emailId: meta.emailId,
    },
    destinationIds,
    heartbeatToken,
    trace,
  };
}

/** [2147483647] largest `size` the `integer` column holds, bytes. */
const MAX_STORED_SIZE = 2 ** 31 - 1;

/**
 * The same message as a minimal quarantined row, for when the database refused the parsed one:
 * only what identifies it (server, mailbox, UIDs) and the reason. None of the refused values is
 * kept (no date sent, Message-ID, subject, addresses or body), and its dedupe key is its own id
 * (short, and nobody's duplicate), so that it cannot be refused for the same reason.
 */
export function quarantineForStoreError(message: BuiltMessage, err: unknown): BuiltMessage {
  const reason = err instanceof Error ? err.message : String(err);
  const { row } = message;
  const id = newId();
  return {
    row: {
      id,
      tenantId: row.tenantId,
      serverId: row.serverId,
      mailbox: row.mailbox,
      uidValidity: row.uidValidity,
      uid: row.uid,
      status: 'quarantined',
      quarantineReason: `store-error: ${reason.slice(0, 500)}`,
      messageIdHeader: null,
      dedupeKey: `store-error:${id}`,
      conversationId: newId(),
      subject: '',
      fromAddress: null,
      fromName: null,
      recipients: { to: [], cc: [], deliveredTo: [], xOriginalTo: [] },
      sentAt: null,
      classification: NOT_CLASSIFIED,
      inReplyTo: null,
      references: [],
      bodyText: null,
      bodyHtml: null,
      attachments: [],
      receivedAt: isStorableDate(row.receivedAt) ? row.receivedAt : new Date(),
      size: Math.min(Math.max(0, Math.trunc(row.size) || 0), MAX_STORED_SIZE),
      emailId: row.emailId ?? null,
    },
    destinationIds: [],
    heartbeatToken: null,
    trace: { type: 'quarantined', detail: null },
  };
}

/** Subject and From of a header block, read without a MIME parser (for too-large messages). */
function quickHeaderFields(header: Buffer): { subject: string; from: string | null } {
  const text = header
    .subarray(0, 64 * 1024)
    .toString('latin1')
    .replace(/\r?\n[ \t]+/g, ' ');
  const subject = /^subject:[ \t]*(.*)$/im.exec(text)?.[1]?.trim() ?? '';
  const from = /^from:[ \t]*(.*)$/im.exec(text)?.[1]?.trim() ?? null;
  return { subject: subject.slice(0, 998), from: from ? from.slice(0, 320) : null };
}
