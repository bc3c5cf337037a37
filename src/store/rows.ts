/**
 * Plain row shapes of the tables. The rest of the engine sees these, never TypeORM.
 * Sealed columns hold `SecretSealer` envelopes, never plaintext.
 */

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
export type OAuthFlow = 'device-code' | 'client-credentials';

/** Non-secret OAuth 2.0 settings of one side (IMAP or SMTP) of a server. */
export interface OAuthSettings {
  clientId: string;
  directoryId: string;
  flow: OAuthFlow;
  /** e.g. https://login.microsoftonline.com */
  authorityHost: string;
}

export interface EmailServerRow {
  id: string;
  tenantId: string;
  name: string;
  nameKey: string;
  enabled: boolean;
  imapHost: string;
  imapPort: number;
  imapSecure: boolean;
  imapUser: string;
  imapAuthMethod: ImapAuthMethod;
  imapPasswordSealed: string | null;
  imapOAuth: OAuthSettings | null;
  imapClientSecretSealed: string | null;
  imapMaxSessions: number;
  /** lower(imap host) + '\n' + lower(imap user): one account, one row, across all tenants. */
  accountKey: string;
  smtpHost: string;
  smtpPort: number;
  smtpSecure: boolean;
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
  createdAt: Date;
  updatedAt: Date;
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
