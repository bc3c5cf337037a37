import { EntitySchema, type EntitySchemaColumnOptions } from 'typeorm';
import type { ApiTokenRow, DestinationRow, EmailServerRow, TenantRow } from './rows.js';

// Column types are always explicit: no decorator metadata is needed, so tsx and tsc agree.
const id: EntitySchemaColumnOptions = { type: 'uuid', primary: true };
const text = (name: string, nullable = false): EntitySchemaColumnOptions => ({ type: 'text', name, nullable });
const bool = (name: string): EntitySchemaColumnOptions => ({ type: 'boolean', name });
const int = (name: string): EntitySchemaColumnOptions => ({ type: 'integer', name });
const created: EntitySchemaColumnOptions = { type: 'timestamptz', name: 'created_at', createDate: true };
const updated: EntitySchemaColumnOptions = { type: 'timestamptz', name: 'updated_at', updateDate: true };

export const TenantEntity = new EntitySchema<TenantRow>({
  name: 'Tenant',
  tableName: 'tenants',
  columns: { id, name: text('name'), nameKey: text('name_key'), createdAt: created, updatedAt: updated },
  indices: [{ name: 'tenants_name_key_uq', columns: ['nameKey'], unique: true }],
});

export const EmailServerEntity = new EntitySchema<EmailServerRow & { tenant?: TenantRow }>({
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
  },
  indices: [
    { name: 'email_servers_account_key_uq', columns: ['accountKey'], unique: true },
    { name: 'email_servers_tenant_name_uq', columns: ['tenantId', 'nameKey'], unique: true },
  ],
});

export const DestinationEntity = new EntitySchema<DestinationRow & { tenant?: TenantRow; server?: EmailServerRow }>({
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

export const ENTITIES = [TenantEntity, EmailServerEntity, DestinationEntity, ApiTokenEntity];
