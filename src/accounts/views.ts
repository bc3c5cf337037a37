import type { ApiTokenRow, DestinationRow, EmailServerRow, OAuthSettings, TenantRow } from '../store/rows.js';
import type { ApiTokenView, DestinationView, ServerView, TenantView } from './schemas.js';

/** What the API and the CLI show of stored rows. Secrets appear only as `has…: true`. */

export function tenantView(row: TenantRow): TenantView {
  return { id: row.id, name: row.name, createdAt: row.createdAt.toISOString(), updatedAt: row.updatedAt.toISOString() };
}

function oauthView(o: OAuthSettings | null, sealedSecret: string | null): ServerView['imap']['auth']['oauth2'] {
  return o ? { ...o, serverUrl: o.serverUrl ?? null, hasClientSecret: sealedSecret !== null } : null;
}

export function serverView(row: EmailServerRow): ServerView {
  return {
    id: row.id,
    tenantId: row.tenantId,
    name: row.name,
    enabled: row.enabled,
    imap: {
      host: row.imapHost,
      port: row.imapPort,
      secure: row.imapSecure,
      user: row.imapUser,
      auth: {
        method: row.imapAuthMethod,
        hasPassword: row.imapPasswordSealed !== null,
        oauth2: oauthView(row.imapOAuth, row.imapClientSecretSealed),
      },
      maxSessions: row.imapMaxSessions,
      caFile: row.imapCaFile,
    },
    smtp: {
      host: row.smtpHost,
      port: row.smtpPort,
      secure: row.smtpSecure,
      auth: {
        mode: row.smtpAuthMode,
        method: row.smtpAuthMethod,
        user: row.smtpUser,
        hasPassword: row.smtpPasswordSealed !== null,
        oauth2: oauthView(row.smtpOAuth, row.smtpClientSecretSealed),
      },
      heartbeatAddress: row.smtpHeartbeatAddress,
      rateLimitPerHour: row.smtpRateLimitPerHour,
      caFile: row.smtpCaFile,
    },
    postProcess: row.postProcess,
    defaultDestinationId: row.defaultDestinationId,
    proxy: row.proxy,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function destinationView(row: DestinationRow): DestinationView {
  return {
    id: row.id,
    tenantId: row.tenantId,
    name: row.name,
    address: row.address,
    description: row.description,
    fromText: row.fromText,
    monitored: row.monitored,
    outgoing: row.outgoing,
    serverId: row.serverId,
    webhookUrl: row.webhookUrl,
    hasWebhookSecret: row.webhookSecretSealed !== null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function apiTokenView(row: ApiTokenRow): ApiTokenView {
  return {
    id: row.id,
    tenantId: row.tenantId,
    name: row.name,
    createdAt: row.createdAt.toISOString(),
    lastUsedAt: row.lastUsedAt ? row.lastUsedAt.toISOString() : null,
  };
}
