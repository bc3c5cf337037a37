import { EntitySchema, type EntitySchemaColumnOptions } from 'typeorm';
import { OAuthGrantEntity } from './oauth-grants.js';
import { ResponseFileSettingsEntity } from './response-file-settings.js';
import { WebhookDeliveryEntity, WebhookLeaseEntity } from './webhook-deliveries.js';
import { EngineInstanceEntity, ServerLeaseEntity } from './leases.js';
import type {
  AlertRow,
  ApiTokenRow,
  CheckpointRow,
  DeliveryRow,
  DestinationRow,
  EmailServerRow,
  InboundMessageRow,
  OutboundMessageRow,
  TenantRow,
} from './rows.js';

// Column types are always explicit: no decorator metadata is needed, so tsx and tsc agree.
const id: EntitySchemaColumnOptions = { type: 'uuid', primary: true };
const text = (name: string, nullable = false): EntitySchemaColumnOptions => ({ type: 'text', name, nullable });
const bool = (name: string): EntitySchemaColumnOptions => ({ type: 'boolean', name });
const int = (name: string): EntitySchemaColumnOptions => ({ type: 'integer', name });
const created: EntitySchemaColumnOptions = { type: 'timestamptz', name: 'created_at', createDate: true };
const updated: EntitySchemaColumnOptions = { type: 'timestamptz', name: 'updated_at', updateDate: true };
/** int8 columns arrive as text from pg; UIDs and sequence numbers fit a JS number. */
const bigintAsNumber = { to: (v: unknown) => v, from: (v: unknown) => (v === null ? null : Number(v)) };
const int8 = (name: string, extra: Partial<EntitySchemaColumnOptions> = {}): EntitySchemaColumnOptions => ({
  type: 'bigint',
  name,
  transformer: bigintAsNumber,
  ...extra,
});
const json = (name: string, nullable = false): EntitySchemaColumnOptions => ({ type: 'jsonb', name, nullable });
const time = (name: string, nullable = false): EntitySchemaColumnOptions => ({ type: 'timestamptz', name, nullable });

export const TenantEntity = new EntitySchema<TenantRow>({
  name: 'Tenant',
  tableName: 'tenants',
  columns: { id, name: text('name'), nameKey: text('name_key'), createdAt: created, updatedAt: updated },
  indices: [{ name: 'tenants_name_key_uq', columns: ['nameKey'], unique: true }],
});

export const EmailServerEntity = new EntitySchema<
  EmailServerRow & { tenant?: TenantRow; defaultDestination?: DestinationRow }
>({
  name: 'EmailServer',
  tableName: 'email_servers',
  columns: {
    id,
    tenantId: { type: 'uuid', name: 'tenant_id' },
    name: text('name'),
    nameKey: text('name_key'),
    enabled: bool('enabled'),
    imapHost: text('imap_host'),
    imapPort: int('imap_port'),
    imapSecure: bool('imap_secure'),
    imapUser: text('imap_user'),
    imapAuthMethod: text('imap_auth_method'),
    imapPasswordSealed: text('imap_password_sealed', true),
    imapOAuth: { type: 'jsonb', name: 'imap_oauth', nullable: true },
    imapClientSecretSealed: text('imap_client_secret_sealed', true),
    imapMaxSessions: int('imap_max_sessions'),
    accountKey: text('account_key'),
    smtpHost: text('smtp_host'),
    smtpPort: int('smtp_port'),
    smtpSecure: bool('smtp_secure'),
    smtpAuthMode: text('smtp_auth_mode'),
    smtpAuthMethod: text('smtp_auth_method', true),
    smtpUser: text('smtp_user', true),
    smtpPasswordSealed: text('smtp_password_sealed', true),
    smtpOAuth: { type: 'jsonb', name: 'smtp_oauth', nullable: true },
    smtpClientSecretSealed: text('smtp_client_secret_sealed', true),
    smtpHeartbeatAddress: text('smtp_heartbeat_address', true),
    smtpRateLimitPerHour: int('smtp_rate_limit_per_hour'),
    postProcess: text('post_process'),
    // Migration 0007: a CA file trusted for IMAP TLS, and the default destination.
    imapCaFile: text('imap_ca_file', true),
    defaultDestinationId: { type: 'uuid', name: 'default_destination_id', nullable: true },
    // Migration 0014: the proxy of its IMAP and SMTP connections.
    proxy: text('proxy', true),
    // Migration 0021: a CA file trusted for SMTP TLS.
    smtpCaFile: text('smtp_ca_file', true),
    // Migration 0021: how each side is encrypted (imap_secure / smtp_secure follow: `tls = implicit`).
    imapTls: text('imap_tls'),
    smtpTls: text('smtp_tls'),
    // Migration 0034: a tenant's token chose its hosts (connections then follow MAILROOM_MAIL_ALLOW_PRIVATE).
    hostsByTenant: { type: 'boolean', name: 'hosts_by_tenant', default: false },
    // Migration 0038: the folders watched (empty: the engine's default).
    imapFolders: { type: 'jsonb', name: 'imap_folders', default: () => "'[]'" },
    createdAt: created,
    updatedAt: updated,
  },
  relations: {
    tenant: {
      type: 'many-to-one',
      target: 'Tenant',
      joinColumn: { name: 'tenant_id', foreignKeyConstraintName: 'email_servers_tenant_fk' },
      onDelete: 'RESTRICT',
    },
    defaultDestination: {
      type: 'many-to-one',
      target: 'Destination',
      nullable: true,
      joinColumn: { name: 'default_destination_id', foreignKeyConstraintName: 'email_servers_default_destination_fk' },
      onDelete: 'SET NULL',
    },
  },
  indices: [
    { name: 'email_servers_account_key_uq', columns: ['accountKey'], unique: true },
    { name: 'email_servers_tenant_name_uq', columns: ['tenantId', 'nameKey'], unique: true },
  ],
  // Migration 0021: each side's TLS mode is one of four names.
  checks: ['imap', 'smtp'].map((side) => ({
    name: `email_servers_${side}_tls_check`,
    expression: `${side}_tls IN ('implicit', 'starttls-required', 'starttls-when-offered', 'none')`,
  })),
});

export const DestinationEntity = new EntitySchema<
  DestinationRow & { lastSeq?: number; tenant?: TenantRow; server?: EmailServerRow }
>({
  name: 'Destination',
  tableName: 'destinations',
  columns: {
    id,
    tenantId: { type: 'uuid', name: 'tenant_id' },
    name: text('name'),
    nameKey: text('name_key'),
    address: text('address'),
    addressKey: text('address_key'),
    description: text('description'),
    fromText: text('from_text'),
    monitored: bool('monitored'),
    outgoing: bool('outgoing'),
    serverId: { type: 'uuid', name: 'server_id', nullable: true },
    // Webhooks (migration 0006): the URL events are POSTed to and the sealed signing secret.
    webhookUrl: text('webhook_url', true),
    webhookSecretSealed: text('webhook_secret_sealed', true),
    // Migration 0045: batched webhook delivery ({maxEvents, maxWaitMs}), opt-in.
    webhookBatch: { type: 'jsonb', name: 'webhook_batch', nullable: true },
    // Migration 0033: the last seq given to a delivery of this destination (never reused; see DeliveryRepository.append).
    lastSeq: { type: 'bigint', name: 'last_seq', default: 0, select: false },
    createdAt: created,
    updatedAt: updated,
  },
  relations: {
    tenant: {
      type: 'many-to-one',
      target: 'Tenant',
      joinColumn: { name: 'tenant_id', foreignKeyConstraintName: 'destinations_tenant_fk' },
      onDelete: 'RESTRICT',
    },
    server: {
      type: 'many-to-one',
      target: 'EmailServer',
      nullable: true,
      joinColumn: { name: 'server_id', foreignKeyConstraintName: 'destinations_server_fk' },
      onDelete: 'RESTRICT',
    },
  },
  indices: [
    { name: 'destinations_tenant_name_uq', columns: ['tenantId', 'nameKey'], unique: true },
    { name: 'destinations_tenant_address_uq', columns: ['tenantId', 'addressKey'], unique: true },
    { name: 'destinations_server_idx', columns: ['serverId'] },
  ],
});

export const ApiTokenEntity = new EntitySchema<ApiTokenRow & { tenant?: TenantRow }>({
  name: 'ApiToken',
  tableName: 'api_tokens',
  columns: {
    id,
    tenantId: { type: 'uuid', name: 'tenant_id', nullable: true },
    name: text('name'),
    tokenHash: text('token_hash'),
    createdAt: created,
    lastUsedAt: { type: 'timestamptz', name: 'last_used_at', nullable: true },
  },
  relations: {
    tenant: {
      type: 'many-to-one',
      target: 'Tenant',
      nullable: true,
      joinColumn: { name: 'tenant_id', foreignKeyConstraintName: 'api_tokens_tenant_fk' },
      onDelete: 'CASCADE',
    },
  },
  indices: [{ name: 'api_tokens_hash_uq', columns: ['tokenHash'], unique: true }],
});

export const CheckpointEntity = new EntitySchema<CheckpointRow>({
  name: 'MailboxCheckpoint',
  tableName: 'mailbox_checkpoints',
  columns: {
    serverId: { type: 'uuid', name: 'server_id', primary: true },
    mailbox: { type: 'text', primary: true },
    uidValidity: int8('uid_validity'),
    lastUid: int8('last_uid'),
    postProcessedUid: int8('post_processed_uid'),
    updatedAt: updated,
  },
  relations: {
    server: {
      type: 'many-to-one',
      target: 'EmailServer',
      joinColumn: { name: 'server_id', foreignKeyConstraintName: 'mailbox_checkpoints_server_fk' },
      onDelete: 'CASCADE',
    },
  } as object,
});

export const InboundMessageEntity = new EntitySchema<InboundMessageRow>({
  name: 'InboundMessage',
  tableName: 'inbound_messages',
  columns: {
    id,
    tenantId: { type: 'uuid', name: 'tenant_id' },
    serverId: { type: 'uuid', name: 'server_id' },
    mailbox: text('mailbox'),
    uidValidity: int8('uid_validity'),
    uid: int8('uid'),
    status: text('status'),
    quarantineReason: text('quarantine_reason', true),
    messageIdHeader: text('message_id_header', true),
    dedupeKey: text('dedupe_key'),
    conversationId: { type: 'uuid', name: 'conversation_id' },
    subject: text('subject'),
    fromAddress: text('from_address', true),
    fromName: text('from_name', true),
    recipients: json('recipients'),
    sentAt: time('sent_at', true),
    receivedAt: time('received_at'),
    ingestedAt: { type: 'timestamptz', name: 'ingested_at', createDate: true },
    size: int('size'),
    classification: json('classification'),
    inReplyTo: text('in_reply_to', true),
    references: json('message_references'),
    bodyText: text('body_text', true),
    bodyHtml: text('body_html', true),
    attachments: json('attachments'),
    sourceStore: text('source_store', true),
    sourceSize: { type: 'integer', name: 'source_size', nullable: true },
    // Migration 0038: the server's own id of the message (X-GM-MSGID, EMAILID).
    emailId: text('email_id', true),
  },
  relations: {
    server: {
      type: 'many-to-one',
      target: 'EmailServer',
      joinColumn: { name: 'server_id', foreignKeyConstraintName: 'inbound_messages_server_fk' },
      onDelete: 'CASCADE',
    },
  } as object,
  indices: [
    { name: 'inbound_messages_uid_uq', columns: ['serverId', 'mailbox', 'uidValidity', 'uid'], unique: true },
    { name: 'inbound_messages_dedupe_idx', columns: ['serverId', 'dedupeKey'] },
    { name: 'inbound_messages_email_id_idx', columns: ['serverId', 'emailId'], where: 'email_id IS NOT NULL' },
    { name: 'inbound_messages_message_id_idx', columns: ['tenantId', 'messageIdHeader'] },
    { name: 'inbound_messages_status_idx', columns: ['serverId', 'status'] },
    { name: 'inbound_messages_age_idx', columns: ['tenantId', 'ingestedAt'] },
    { name: 'inbound_messages_source_age_idx', columns: ['tenantId', 'ingestedAt'], where: 'source_store IS NOT NULL' },
    {
      name: 'inbound_messages_body_age_idx',
      columns: ['tenantId', 'ingestedAt'],
      where: 'body_text IS NOT NULL OR body_html IS NOT NULL',
    },
    // The trace search's (migration 0041): GIN indexes TypeORM cannot describe, left to the migration.
    { name: 'inbound_messages_subject_trgm_idx', columns: ['subject'], synchronize: false },
    { name: 'inbound_messages_recipients_idx', columns: ['recipients'], synchronize: false },
    { name: 'inbound_messages_sender_idx', columns: ['tenantId', 'fromAddress'] },
  ],
});

export interface InboundRawRow {
  messageId: string;
  raw: Buffer;
}

export const InboundRawEntity = new EntitySchema<InboundRawRow>({
  name: 'InboundRaw',
  tableName: 'inbound_raw',
  columns: {
    messageId: { type: 'uuid', name: 'message_id', primary: true },
    raw: { type: 'bytea' },
  },
  relations: {
    message: {
      type: 'one-to-one',
      target: 'InboundMessage',
      joinColumn: { name: 'message_id', foreignKeyConstraintName: 'inbound_raw_message_fk' },
      onDelete: 'CASCADE',
    },
  } as object,
});

export const DeliveryEntity = new EntitySchema<DeliveryRow>({
  name: 'InboundDelivery',
  tableName: 'inbound_deliveries',
  columns: {
    destinationId: { type: 'uuid', name: 'destination_id', primary: true },
    seq: int8('seq', { primary: true }),
    messageId: { type: 'uuid', name: 'message_id' },
    tenantId: { type: 'uuid', name: 'tenant_id' },
    createdAt: created,
    claimedBy: text('claimed_by', true),
    claimedAt: time('claimed_at', true),
    ackedAt: time('acked_at', true),
  },
  relations: {
    destination: {
      type: 'many-to-one',
      target: 'Destination',
      joinColumn: { name: 'destination_id', foreignKeyConstraintName: 'inbound_deliveries_destination_fk' },
      onDelete: 'CASCADE',
    },
    message: {
      type: 'many-to-one',
      target: 'InboundMessage',
      joinColumn: { name: 'message_id', foreignKeyConstraintName: 'inbound_deliveries_message_fk' },
      onDelete: 'CASCADE',
    },
  } as object,
  indices: [
    { name: 'inbound_deliveries_message_uq', columns: ['destinationId', 'messageId'], unique: true },
    { name: 'inbound_deliveries_message_idx', columns: ['messageId'] },
  ],
});

export const AlertEntity = new EntitySchema<AlertRow>({
  name: 'Alert',
  tableName: 'alerts',
  columns: {
    id,
    tenantId: { type: 'uuid', name: 'tenant_id' },
    serverId: { type: 'uuid', name: 'server_id', nullable: true },
    kind: text('kind'),
    message: text('message'),
    details: json('details'),
    createdAt: created,
  },
  relations: {
    server: {
      type: 'many-to-one',
      target: 'EmailServer',
      nullable: true,
      joinColumn: { name: 'server_id', foreignKeyConstraintName: 'alerts_server_fk' },
      onDelete: 'CASCADE',
    },
  } as object,
  indices: [{ name: 'alerts_server_idx', columns: ['serverId'] }],
});

export const OutboundMessageEntity = new EntitySchema<OutboundMessageRow>({
  name: 'OutboundMessage',
  tableName: 'outbound_messages',
  columns: {
    id,
    tenantId: { type: 'uuid', name: 'tenant_id' },
    destinationId: { type: 'uuid', name: 'destination_id' },
    serverId: { type: 'uuid', name: 'server_id' },
    status: text('status'),
    messageIdHeader: text('message_id_header'),
    conversationId: { type: 'uuid', name: 'conversation_id', nullable: true },
    subject: text('subject'),
    recipients: json('recipients'),
    attempts: { type: 'integer', name: 'attempts', default: 0 },
    lastReply: text('last_reply', true),
    lastResponseCode: { type: 'integer', name: 'last_response_code', nullable: true },
    nextAttemptAt: time('next_attempt_at', true),
    createdAt: created,
    updatedAt: updated,
    firstAttemptAt: time('first_attempt_at', true),
    sentAt: time('sent_at', true),
    instanceId: text('instance_id'),
    deadLetteredAt: time('dead_lettered_at', true),
    refusedRecipients: { type: 'jsonb', name: 'refused_recipients', default: () => "'[]'" },
    acceptedRecipients: { type: 'jsonb', name: 'accepted_recipients', default: () => "'[]'" },
  },
  indices: [
    { name: 'outbound_messages_server_idx', columns: ['serverId', 'status'] },
    { name: 'outbound_messages_message_id_idx', columns: ['tenantId', 'messageIdHeader'] },
    { name: 'outbound_messages_dead_idx', columns: ['tenantId', 'serverId'], where: 'dead_lettered_at IS NOT NULL' },
    { name: 'outbound_messages_age_idx', columns: ['tenantId', 'createdAt'] },
    // The trace search's (migration 0041): GIN indexes TypeORM cannot describe, left to the migration.
    { name: 'outbound_messages_subject_trgm_idx', columns: ['subject'], synchronize: false },
    { name: 'outbound_messages_recipients_idx', columns: ['recipients'], synchronize: false },
  ],
});

export interface SendLogRow {
  id: string;
  serverId: string;
  sentAt: Date;
  outboundId: string | null;
  /** False for a place the rate limit took before a send (replaced by the delivery's record). */
  recorded: boolean;
}

export const SendLogEntity = new EntitySchema<SendLogRow>({
  name: 'SmtpSendLog',
  tableName: 'smtp_send_log',
  columns: {
    id: { type: 'bigint', primary: true, generated: 'increment' },
    serverId: { type: 'uuid', name: 'server_id' },
    sentAt: time('sent_at'),
    outboundId: { type: 'uuid', name: 'outbound_id', nullable: true },
    recorded: { type: 'boolean', default: true },
  },
  indices: [
    { name: 'smtp_send_log_server_time_idx', columns: ['serverId', 'sentAt'] },
    { name: 'smtp_send_log_reservation_idx', columns: ['outboundId'], where: 'NOT recorded' },
  ],
});

export const ENTITIES = [
  TenantEntity,
  EmailServerEntity,
  DestinationEntity,
  ApiTokenEntity,
  CheckpointEntity,
  InboundMessageEntity,
  InboundRawEntity,
  DeliveryEntity,
  AlertEntity,
  OutboundMessageEntity,
  SendLogEntity,
  OAuthGrantEntity,
  ResponseFileSettingsEntity,
  WebhookDeliveryEntity,
  WebhookLeaseEntity,
  EngineInstanceEntity,
  ServerLeaseEntity,
];
