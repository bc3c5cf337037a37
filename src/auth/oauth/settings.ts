import type { EmailServerRow, OAuthSettings } from '../../store/rows.js';
import type { OAuthPurpose } from '../../store/oauth-grants.js';

/** Delegated scopes a person grants with the device code: both protocols at once, and a refresh token. */
export const IMAP_SCOPE = 'https://outlook.office.com/IMAP.AccessAsUser.All';
export const SMTP_SCOPE = 'https://outlook.office.com/SMTP.Send';
export const DEVICE_CODE_SCOPES = [IMAP_SCOPE, SMTP_SCOPE, 'offline_access'];
/** App-only access (client credentials) to Exchange Online IMAP and SMTP. */
export const APP_SCOPE = 'https://outlook.office365.com/.default';

/**
 * Microsoft Graph (`protocol: graph`): delegated read-write and send, with a refresh token
 * (https://learn.microsoft.com/graph/permissions-reference#mailreadwrite), or the app's
 * application permissions granted by an administrator (`/.default`).
 */
export const GRAPH_READ_SCOPE = 'https://graph.microsoft.com/Mail.ReadWrite';
export const GRAPH_SEND_SCOPE = 'https://graph.microsoft.com/Mail.Send';
export const GRAPH_APP_SCOPE = 'https://graph.microsoft.com/.default';

/** Which resource a sign-in's tokens are for: Exchange Online's IMAP and SMTP, or Microsoft Graph. */
export interface ScopeTarget {
  settings: Pick<OAuthSettings, 'serverUrl'>;
  graph?: boolean | undefined;
}

/**
 * The scopes of a server's sign-in. With a `serverUrl` (a custom or sovereign Office 365, as the
 * reference's `…_O365_SERVER_URL`), the scopes name that server; without, Exchange Online's.
 */
function scoped(settings: Pick<OAuthSettings, 'serverUrl'>, scope: string): string {
  return settings.serverUrl === undefined ? scope : `${settings.serverUrl}/${scope.slice(scope.lastIndexOf('/') + 1)}`;
}

/** What a person grants with the device code. */
export function deviceCodeScopes({ settings, graph }: ScopeTarget): string[] {
  return graph
    ? [scoped(settings, GRAPH_READ_SCOPE), scoped(settings, GRAPH_SEND_SCOPE), 'offline_access']
    : [scoped(settings, IMAP_SCOPE), scoped(settings, SMTP_SCOPE), 'offline_access'];
}

/** App-only access (client credentials). */
export function appScopes({ settings, graph }: ScopeTarget): string[] {
  return [scoped(settings, graph ? GRAPH_APP_SCOPE : APP_SCOPE)];
}

/** The scope a silent acquisition asks for, per purpose. */
export function scopesFor(purpose: OAuthPurpose, { settings, graph }: ScopeTarget = { settings: {} }): string[] {
  const read = graph ? GRAPH_READ_SCOPE : IMAP_SCOPE;
  const send = graph ? GRAPH_SEND_SCOPE : SMTP_SCOPE;
  return [scoped(settings, purpose === 'imap' ? read : send)];
}

/** The authority of a directory: `<host>/<directory id>`, never `/common`. */
export function authorityOf(settings: OAuthSettings): string {
  return `${settings.authorityHost.replace(/\/+$/, '')}/${settings.directoryId}`;
}

/** The identity of the app a grant belongs to; a grant made for another app is void. */
export function appKeyOf(settings: OAuthSettings): string {
  return `${authorityOf(settings)}|${settings.clientId}|${settings.flow}`;
}

/**
 * Where a grant's tokens go, as part of its key: the mailbox host and user name of its purpose. A
 * grant saved for another place (by a sign-in or a refresh that was under way when the server was
 * pointed elsewhere) is then void by its key, as one of another app is. (The SMTP host that uses
 * the IMAP grant with `mode: imap` is not part of it: leaving that mode must not void the IMAP
 * sign-in; a new SMTP host in that mode ends it when the change is made, see voidedSignIns.)
 * Migration 0015 writes the same string for grants saved before: keep the two in step.
 */
export function accountPlaceOf(
  row: Pick<EmailServerRow, 'imapHost' | 'imapUser' | 'smtpHost' | 'smtpUser'> & {
    protocol?: EmailServerRow['protocol'];
  },
  purpose: OAuthPurpose,
): string {
  // Graph tokens are for another resource: a sign-in made for IMAP is void for Graph, and back.
  if (row.protocol === 'graph') return `graph:${row.imapHost.trim().toLowerCase()}/${row.imapUser}`;
  return purpose === 'smtp'
    ? `smtp:${row.smtpHost.trim().toLowerCase()}/${row.smtpUser ?? ''}`
    : `imap:${row.imapHost.trim().toLowerCase()}/${row.imapUser}`;
}

/** What OAuth 2.0 means for one side of a server, after `mode: imap` is resolved. */
export interface OAuthTarget {
  /** The purpose whose grant is used (SMTP with `mode: imap` uses the IMAP grant). */
  purpose: OAuthPurpose;
  settings: OAuthSettings;
  /** The mailbox user name for XOAUTH2. */
  user: string;
  /** Tokens for Microsoft Graph (`protocol: graph`) rather than IMAP and SMTP. */
  graph: boolean;
}

/** The OAuth 2.0 target of a server's side, or null when that side does not use OAuth 2.0. */
export function oauthTarget(row: EmailServerRow, purpose: OAuthPurpose): OAuthTarget | null {
  if (purpose === 'smtp' && row.smtpAuthMode === 'imap') return oauthTarget(row, 'imap');
  if (purpose === 'imap') {
    return row.imapAuthMethod === 'oauth2' && row.imapOAuth
      ? { purpose, settings: row.imapOAuth, user: row.imapUser, graph: row.protocol === 'graph' }
      : null;
  }
  if (row.smtpAuthMode !== 'custom' || row.smtpAuthMethod !== 'oauth2' || !row.smtpOAuth) return null;
  return { purpose, settings: row.smtpOAuth, user: row.smtpUser ?? row.imapUser, graph: false };
}
