import type { ApiTokenRow, DestinationRow, EmailServerRow, OAuthSettings, TenantRow } from '../store/rows.js';
import { plainTextWarning } from '../shared/tls-mode.js';
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
      tls: row.imapTls,
      secure: row.imapTls === 'implicit',
      user: row.imapUser,
      auth: {
        method: row.imapAuthMethod,
        hasPassword: row.imapPasswordSealed !== null,
        oauth2: oauthView(row.imapOAuth, row.imapClientSecretSealed),
      },
      maxSessions: row.imapMaxSessions,
      caFile: row.imapCaFile,
      folders: row.imapFolders,
    },
    smtp: {
      host: row.smtpHost,
      port: row.smtpPort,
      tls: row.smtpTls,
      secure: row.smtpTls === 'implicit',
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
    warnings: serverWarnings(row),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** The warnings shown with a server's settings (a side that sends in plain text). */
export function serverWarnings(row: Pick<EmailServerRow, 'imapTls' | 'smtpTls'>): string[] {
  return [plainTextWarning('imap', row.imapTls), plainTextWarning('smtp', row.smtpTls)].filter(
    (w): w is string => w !== null,
  );
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
    webhookBatch: row.webhookBatch,
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
