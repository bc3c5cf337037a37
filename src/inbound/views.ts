import { Type, type Static } from '@sinclair/typebox';
import type { FeedRow, InboundMessageRow } from '../store/rows.js';

const Address = Type.Object({ address: Type.String(), name: Type.String() });
const ClassificationView = Type.Object({
  autoReply: Type.Boolean(),
  bounce: Type.Boolean(),
  loop: Type.Boolean(),
  reasons: Type.Array(Type.String()),
});

export const FeedItemView = Type.Object({
  /** Position in the destination's queue: pass the last one seen as `after`. */
  seq: Type.Integer(),
  id: Type.String(),
  /** `$CallID$` of response files. */
  contactId: Type.String(),
  conversationId: Type.String(),
  subject: Type.String(),
  from: Type.Union([Address, Type.Null()]),
  receivedAt: Type.String({ format: 'date-time' }),
  classification: ClassificationView,
  claimedBy: Type.Union([Type.String(), Type.Null()]),
  ackedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
export type FeedItemView = Static<typeof FeedItemView>;

export const AttachmentView = Type.Object({
  index: Type.Integer(),
  filename: Type.Union([Type.String(), Type.Null()]),
  contentType: Type.String(),
  size: Type.Integer(),
  contentId: Type.Union([Type.String(), Type.Null()]),
  checksum: Type.String(),
  inline: Type.Boolean(),
});

export const MessageDetailView = Type.Object({
  id: Type.String(),
  contactId: Type.String(),
  conversationId: Type.String(),
  serverId: Type.String(),
  status: Type.String(),
  quarantineReason: Type.Union([Type.String(), Type.Null()]),
  messageId: Type.Union([Type.String(), Type.Null()]),
  inReplyTo: Type.Union([Type.String(), Type.Null()]),
  references: Type.Array(Type.String()),
  subject: Type.String(),
  from: Type.Union([Address, Type.Null()]),
  to: Type.Array(Address),
  cc: Type.Array(Address),
  sentAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  receivedAt: Type.String({ format: 'date-time' }),
  size: Type.Integer(),
  classification: ClassificationView,
  text: Type.Union([Type.String(), Type.Null()]),
  html: Type.Union([Type.String(), Type.Null()]),
  attachments: Type.Array(AttachmentView),
});
export type MessageDetailView = Static<typeof MessageDetailView>;

export const MessageSummaryView = Type.Object({
  id: Type.String(),
  status: Type.String(),
  quarantineReason: Type.Union([Type.String(), Type.Null()]),
  subject: Type.String(),
  from: Type.Union([Address, Type.Null()]),
  receivedAt: Type.String({ format: 'date-time' }),
  mailbox: Type.String(),
  uid: Type.Integer(),
  size: Type.Integer(),
});
export type MessageSummaryView = Static<typeof MessageSummaryView>;

function fromOf(row: Pick<InboundMessageRow, 'fromAddress' | 'fromName'>): { address: string; name: string } | null {
  return row.fromAddress ? { address: row.fromAddress, name: row.fromName ?? '' } : null;
}

export function feedItemView(d: FeedRow['delivery'], m: FeedRow['message']): FeedItemView {
  return {
    seq: d.seq,
    id: m.id,
    contactId: m.id,
    conversationId: m.conversationId,
    subject: m.subject,
    from: fromOf(m),
    receivedAt: m.receivedAt.toISOString(),
    classification: m.classification,
    claimedBy: d.claimedBy,
    ackedAt: d.ackedAt ? d.ackedAt.toISOString() : null,
  };
}

export function messageDetailView(m: InboundMessageRow): MessageDetailView {
  return {
    id: m.id,
    contactId: m.id,
    conversationId: m.conversationId,
    serverId: m.serverId,
    status: m.status,
    quarantineReason: m.quarantineReason,
    messageId: m.messageIdHeader,
    inReplyTo: m.inReplyTo,
    references: m.references,
    subject: m.subject,
    from: fromOf(m),
    to: m.recipients.to,
    cc: m.recipients.cc,
    sentAt: m.sentAt ? m.sentAt.toISOString() : null,
    receivedAt: m.receivedAt.toISOString(),
    size: m.size,
    classification: m.classification,
    text: m.bodyText,
    html: m.bodyHtml,
    attachments: m.attachments,
  };
}

export function messageSummaryView(m: InboundMessageRow): MessageSummaryView {
  return {
    id: m.id,
    status: m.status,
    quarantineReason: m.quarantineReason,
    subject: m.subject,
    from: fromOf(m),
    receivedAt: m.receivedAt.toISOString(),
    mailbox: m.mailbox,
    uid: m.uid,
    size: m.size,
  };
}
