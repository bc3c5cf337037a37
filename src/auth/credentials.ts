import { MailroomError } from '../shared/errors.js';
import type { SecretSealer } from '../shared/sealed-secrets.js';
import type { EmailServerRow } from '../store/rows.js';

/** How the engine logs in to a mailbox or a relay: a password, or an OAuth 2.0 access token. */
export type LoginCredentials = { user: string; pass: string } | { user: string; accessToken: string };

/**
 * Opens the sealed credentials of an e-mail server for the engine's own sessions. The values
 * never leave the process: not through the API, not into logs.
 */
export class CredentialService {
  constructor(private readonly sealer: SecretSealer) {}

  private open(row: EmailServerRow, field: string, sealed: string | null): string | null {
    return sealed === null ? null : this.sealer.open(sealed, { tenantId: row.tenantId, rowId: row.id, field });
  }

  /** IMAP login. OAuth 2.0 accounts get their token from the OAuth module (not signed in yet: CREDENTIALS_UNAVAILABLE). */
  async imapLogin(row: EmailServerRow): Promise<LoginCredentials> {
    if (row.imapAuthMethod === 'password') {
      const pass = this.open(row, 'imap.password', row.imapPasswordSealed);
      if (pass === null) throw unavailable(row, 'IMAP', 'no password is stored');
      return { user: row.imapUser, pass };
    }
    throw unavailable(row, 'IMAP', 'OAuth 2.0 sign-in has not been completed');
  }

  /** SMTP login, or null for `mode: none`. */
  async smtpLogin(row: EmailServerRow): Promise<LoginCredentials | null> {
    if (row.smtpAuthMode === 'none') return null;
    if (row.smtpAuthMode === 'imap') return this.imapLogin(row);
    if (row.smtpAuthMethod === 'password') {
      const pass = this.open(row, 'smtp.password', row.smtpPasswordSealed);
      if (pass === null || row.smtpUser === null) throw unavailable(row, 'SMTP', 'no user name or password is stored');
      return { user: row.smtpUser, pass };
    }
    throw unavailable(row, 'SMTP', 'OAuth 2.0 sign-in has not been completed');
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
