import { MailroomError } from '../shared/errors.js';
import type { SecretSealer } from '../shared/sealed-secrets.js';
import type { EmailServerRow } from '../store/rows.js';

/** How the engine logs in to a mailbox or a relay: a password, or an OAuth 2.0 access token. */
export type LoginCredentials = { user: string; pass: string } | { user: string; accessToken: string };

export interface LoginOptions {
  /** The server just refused the access token handed out last: get a fresh one (OAuth 2.0 only). */
  forceRefresh?: boolean;
}

/** Where OAuth 2.0 access tokens come from (the OAuth service; a fake in tests). */
export interface OAuthTokenSource {
  accessToken(
    row: EmailServerRow,
    purpose: 'imap' | 'smtp',
    options?: LoginOptions,
  ): Promise<{ user: string; accessToken: string }>;
}

/**
 * Opens the sealed credentials of an e-mail server for the engine's own sessions. The values
 * never leave the process: not through the API, not into logs.
 */
export class CredentialService {
  /** @param oauth the source of OAuth 2.0 tokens; without it OAuth accounts get CREDENTIALS_UNAVAILABLE. */
  constructor(
    private readonly sealer: SecretSealer,
    private readonly oauth?: OAuthTokenSource,
  ) {}

  private open(row: EmailServerRow, field: string, sealed: string | null): string | null {
    return sealed === null ? null : this.sealer.open(sealed, { tenantId: row.tenantId, rowId: row.id, field });
  }

  private async token(row: EmailServerRow, purpose: 'imap' | 'smtp', options: LoginOptions): Promise<LoginCredentials> {
    if (!this.oauth) throw unavailable(row, purpose.toUpperCase(), 'OAuth 2.0 is not available in this process');
    const { user, accessToken } = await this.oauth.accessToken(row, purpose, options);
    return { user, accessToken };
  }

  /** IMAP login; OAuth 2.0 accounts get an access token (not signed in yet: CREDENTIALS_UNAVAILABLE). */
  async imapLogin(row: EmailServerRow, options: LoginOptions = {}): Promise<LoginCredentials> {
    if (row.imapAuthMethod === 'password') {
      const pass = this.open(row, 'imap.password', row.imapPasswordSealed);
      if (pass === null) throw unavailable(row, 'IMAP', 'no password is stored');
      return { user: row.imapUser, pass };
    }
    return this.token(row, 'imap', options);
  }

  /** SMTP login, or null for `mode: none`; `mode: imap` shares the IMAP password or sign-in. */
  async smtpLogin(row: EmailServerRow, options: LoginOptions = {}): Promise<LoginCredentials | null> {
    if (row.smtpAuthMode === 'none') return null;
    if (row.smtpAuthMode === 'imap') {
      return row.imapAuthMethod === 'password' ? this.imapLogin(row) : this.token(row, 'smtp', options);
    }
    if (row.smtpAuthMethod === 'password') {
      const pass = this.open(row, 'smtp.password', row.smtpPasswordSealed);
      if (pass === null || row.smtpUser === null) throw unavailable(row, 'SMTP', 'no user name or password is stored');
      return { user: row.smtpUser, pass };
    }
    return this.token(row, 'smtp', options);
  }
}

function unavailable(row: EmailServerRow, side: string, why: string): MailroomError {
  return new MailroomError(
    'CREDENTIALS_UNAVAILABLE',
    `${side} credentials of e-mail server '${row.name}' are not usable: ${why}`,
    {
      details: { serverId: row.id },
    },
  );
}
