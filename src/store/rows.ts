/**
 * Plain row shapes of the tables. The rest of the engine sees these, never TypeORM.
 * Sealed columns hold `SecretSealer` envelopes, never plaintext.
 */
import type { TlsMode } from '../shared/tls-mode.js';

export interface TenantRow {
  id: string;
  name: string;
  /** lower-cased name, unique. */
  nameKey: string;
  createdAt: Date;
  updatedAt: Date;
}

export type ImapAuthMethod = 'password' | 'oauth2';
export type SmtpAuthMode = 'none' | 'imap' | 'custom';
/** service-account: Google Workspace, a service account with domain-wide delegation (JWT bearer grant, RFC 7523). */
export type OAuthFlow = 'device-code' | 'client-credentials' | 'service-account';

/** Non-secret OAuth 2.0 settings of one side (IMAP or SMTP) of a server. */
export interface OAuthSettings {
  clientId: string;
  directoryId: string;
  flow: OAuthFlow;
  /** e.g. https://login.microsoftonline.com */
  authorityHost: string;
  /**
   * The Office 365 server the tokens are for (the resource of the scopes), e.g.
   * https://outlook.office365.us for a sovereign cloud; absent: Exchange Online's usual one.
   */
  serverUrl?: string;
}

export interface EmailServerRow {
  id: string;
  tenantId: string;
  name: string;
  nameKey: string;
  enabled: boolean;
  imapHost: string;
  imapPort: number;
  /** `imapTls === 'implicit'` (written with it; the mode decides). */
  imapSecure: boolean;
  /** How the IMAP connection is encrypted (migration 0021). */
  imapTls: TlsMode;
  imapUser: string;
  imapAuthMethod: ImapAuthMethod;
  imapPasswordSealed: string | null;
  imapOAuth: OAuthSettings | null;
  imapClientSecretSealed: string | null;
  imapMaxSessions: number;
  /** canonical imap host + '\n' + lower(imap user) (shared/host-key.ts): one account, one row, across all tenants. */
  accountKey: string;
  smtpHost: string;
  smtpPort: number;
  /** `smtpTls === 'implicit'` (written with it; the mode decides). */
  smtpSecure: boolean;
  /** How the SMTP connection is encrypted (migration 0021). */
  smtpTls: TlsMode;
  smtpAuthMode: SmtpAuthMode;
  smtpAuthMethod: ImapAuthMethod | null;
  smtpUser: string | null;
  smtpPasswordSealed: string | null;
  smtpOAuth: OAuthSettings | null;
  smtpClientSecretSealed: string | null;
  smtpHeartbeatAddress: string | null;
  smtpRateLimitPerHour: number;
  /** 'seen' | 'delete' | 'move:<folder>' */
  postProcess: string;
  /** Absolute path of a PEM file of CA certificates trusted (besides the usual roots) for IMAP TLS; null = none. */
  imapCaFile: string | null;
  /** The same for SMTP TLS (STARTTLS or implicit); null = none. */
  smtpCaFile: string | null;
  /** Destination (of this server) receiving messages that match no monitored destination; null = the unrouted list. */
  defaultDestinationId: string | null;
  /** Proxy of its IMAP and SMTP connections: null = the engine's default, `none` = direct, else a configured name. */
  proxy: string | null;
  /**
   * A tenant's token chose where its connections go (hosts, ports or proxy; migration 0034): they
   * reach only the addresses MAILROOM_MAIL_ALLOW_PRIVATE allows. False: the operator's settings.
   */
  hostsByTenant: boolean;
  /** The folders watched, in order (migration 0038); empty: the engine's default (INBOX). */
  imapFolders: string[];
  createdAt: Date;
  updatedAt: Date;
}

export interface DestinationRow {
  id: string;
  tenantId: string;
  name: string;
  nameKey: string;
  address: string;
  /** lower-cased address, unique per tenant. */
  addressKey: string;
  description: string;
  fromText: string;
  monitored: boolean;
  outgoing: boolean;
  serverId: string | null;
  /** http(s) URL routed messages are POSTed to; null = no webhook. */
  webhookUrl: string | null;
  /** HMAC-SHA256 signing secret of the webhook, sealed (`SecretSealer`, field `webhookSecret`). */
  webhookSecretSealed: string | null;
  /** Events POSTed together, opt-in (migration 0045); null: one POST per event. */
  webhookBatch: WebhookBatch | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A destination's batched webhook delivery: up to `maxEvents` events a POST, none waiting longer than `maxWaitMs`. */
export interface WebhookBatch {
  maxEvents: number;
  maxWaitMs: number;
}

export interface ApiTokenRow {
  id: string;
  /** null: an administrator token for every tenant. */
  tenantId: string | null;
  name: string;
  /** SHA-256 of the token, hex. The token itself is shown once and never stored. */
  tokenHash: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface CheckpointRow {
  serverId: string;
  mailbox: string;
  uidValidity: number;
  lastUid: number;
  /** Every message up to this UID had its post-processing action run (or needs none). */
  postProcessedUid: number;
  updatedAt: Date;
}

export type InboundStatus = 'routed' | 'unrouted' | 'quarantined' | 'duplicate' | 'heartbeat';

export interface MessageAddress {
  address: string;
  name: string;
}

export interface Classification {
  autoReply: boolean;
  bounce: boolean;
  loop: boolean;
  /** Short machine-readable codes of every rule that matched, e.g. `precedence:bulk`, `null-sender`. */
  reasons: string[];
}

/** An attachment without its content (the parser's description, stored with the message). */
export interface AttachmentInfo {
  /** Position in mailparser's attachment list; stable for the same raw message. */
  index: number;
  filename: string | null;
  contentType: string;
  /** Decoded size in bytes. */
  size: number;
  /** Content-ID without angle brackets (what `cid:` URLs in `html` name), or null. */
  contentId: string | null;
  /** SHA-256 of the decoded content, hex. */
  checksum: string;
  /** Disposition `inline`, or an embedded part of multipart/related. */
  inline: boolean;
}

export interface InboundMessageRow {
  id: string;
  tenantId: string;
  serverId: string;
  mailbox: string;
  uidValidity: number;
  uid: number;
  status: InboundStatus;
  quarantineReason: string | null;
  messageIdHeader: string | null;
  /** Message-ID, or a hash of the header block and size when it is missing. */
  dedupeKey: string;
  conversationId: string;
  subject: string;
  fromAddress: string | null;
  fromName: string | null;
  recipients: { to: MessageAddress[]; cc: MessageAddress[]; deliveredTo: string[]; xOriginalTo: string[] };
  sentAt: Date | null;
  receivedAt: Date;
  ingestedAt: Date;
  size: number;
  classification: Classification;
  inReplyTo: string | null;
  references: string[];
  bodyText: string | null;
  bodyHtml: string | null;
  attachments: AttachmentInfo[];
  /** Where the raw source is kept (null: none was kept, e.g. too large to fetch). */
  sourceStore: 'postgres' | 'directory' | 's3' | null;
  /** The raw source's length, bytes (null without one). */
  sourceSize: number | null;
  /**
   * The server's own id of the message, the same in each folder it is in (Gmail's X-GM-MSGID, RFC
   * 8474 EMAILID; migration 0038); null when the server gives none.
   */
  emailId: string | null;
}

export interface DeliveryRow {
  destinationId: string;
  /** Position in the destination's queue: 1, 2, 3… in arrival order, never reused. */
  seq: number;
  messageId: string;
  tenantId: string;
  createdAt: Date;
  claimedBy: string | null;
  claimedAt: Date | null;
  ackedAt: Date | null;
}

/** What an agent's feed shows of a delivery and its message (one row of `DeliveryRepository.feedRows`). */
export interface FeedRow {
  delivery: Pick<DeliveryRow, 'seq' | 'messageId' | 'claimedBy' | 'ackedAt'>;
  message: Pick<
    InboundMessageRow,
    'id' | 'conversationId' | 'subject' | 'fromAddress' | 'fromName' | 'receivedAt' | 'classification'
  >;
}

export interface AlertRow {
  id: string;
  tenantId: string;
  serverId: string | null;
  kind: string;
  message: string;
  details: Record<string, unknown>;
  createdAt: Date;
}

export type OutboundStatus = 'queued' | 'sending' | 'sent' | 'deferred' | 'failed';

/** What a new outgoing message's status row is made of; everything else starts empty. */
export type QueuedRowFields = Pick<
  OutboundMessageRow,
  | 'id'
  | 'tenantId'
  | 'destinationId'
  | 'serverId'
  | 'messageIdHeader'
  | 'conversationId'
  | 'subject'
  | 'recipients'
  | 'instanceId'
>;

/**
 * The status row of a message accepted and not yet tried: `queued`, no attempt, no reply. With
 * `createdAt`, the whole row (`updatedAt` the same). Written out field by field: on Node 20 an
 * object spread followed by more properties (`{ ...fields, status }`) takes about a microsecond.
 */
export function queuedRow(fields: QueuedRowFields): Omit<OutboundMessageRow, 'createdAt' | 'updatedAt'>;
export function queuedRow(fields: QueuedRowFields, createdAt: Date): OutboundMessageRow;
export function queuedRow(
  fields: QueuedRowFields,
  createdAt?: Date,
): OutboundMessageRow | Omit<OutboundMessageRow, 'createdAt' | 'updatedAt'> {
  return {
    id: fields.id,
    tenantId: fields.tenantId,
    destinationId: fields.destinationId,
    serverId: fields.serverId,
    status: 'queued',
    messageIdHeader: fields.messageIdHeader,
    conversationId: fields.conversationId,
    subject: fields.subject,
    recipients: fields.recipients,
    attempts: 0,
    lastReply: null,
    lastResponseCode: null,
    nextAttemptAt: null,
    firstAttemptAt: null,
    sentAt: null,
    instanceId: fields.instanceId,
    deadLetteredAt: null,
    refusedRecipients: [],
    acceptedRecipients: [],
    // A spread last costs nothing like one first.
    ...(createdAt !== undefined && { createdAt, updatedAt: createdAt }),
  };
}

export interface OutboundMessageRow {
  id: string;
  tenantId: string;
  destinationId: string;
  serverId: string;
  status: OutboundStatus;
  messageIdHeader: string;
  conversationId: string | null;
  subject: string;
  recipients: string[];
  attempts: number;
  lastReply: string | null;
  lastResponseCode: number | null;
  nextAttemptAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  firstAttemptAt: Date | null;
  sentAt: Date | null;
  /** The instance whose spool holds the message. */
  instanceId: string;
  /** When its spool file was set aside as a dead letter (on `instanceId`'s disk); null when it is not one. */
  deadLetteredAt: Date | null;
  /**
   * Recipients the server refused for good (5xx at RCPT TO) while it took the message for the
   * others, with its reply to each: the message was partly sent. Empty for most messages.
   */
  refusedRecipients: RefusedRecipient[];
  /**
   * Recipients the server took the message for while it refused others for now (4xx): the spool
   * file was narrowed to those others, so this is where the first ones are remembered. Empty
   * unless a message was partly sent and deferred.
   */
  acceptedRecipients: AcceptedRecipient[];
}

/** A recipient the server took the message for at an attempt that left others waiting. */
export interface AcceptedRecipient {
  address: string;
  /** The server's reply to the final dot. */
  reply: string;
  /** When, ISO 8601. */
  at: string;
}

/** A recipient refused for good while the message went to the others. */
export interface RefusedRecipient {
  address: string;
  reply: string;
  responseCode: number | null;
  /** When the server refused it, ISO 8601. */
  at: string;
}
