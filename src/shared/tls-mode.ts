/**
 * How a connection to a mail server (one side of an e-mail server: IMAP or SMTP) is encrypted.
 * Certificates are verified in every mode that encrypts (a private CA is named in `caFile`).
 *
 * - `implicit`: TLS from the first byte (ports 993 and 465). Should the server answer that
 *   handshake in plain text (a STARTTLS port such as 143 or 587 with "Use SSL" ticked, as in the
 *   reference's Office 365 example), STARTTLS, required (see `tls-fallback.ts`). Never plain text.
 * - `starttls-required`: plain text first, then STARTTLS, which the server must offer: a server
 *   that does not is refused, before any password is sent.
 * - `starttls-when-offered`: STARTTLS when the server offers it, else plain text. A server that
 *   offers it and then presents a certificate that does not verify is refused (never downgraded
 *   silently); an attacker on the path can hide the offer, though.
 * - `none`: plain text, STARTTLS never used: passwords and mail travel unencrypted. Only when
 *   chosen by name, and always shown with a warning.
 *
 * The default is what `secure` ("Use SSL") always meant: `implicit` when set, else
 * `starttls-when-offered`; IMAP without either is `implicit`, SMTP is `implicit` on port 465 only.
 */
export type TlsMode = 'implicit' | 'starttls-required' | 'starttls-when-offered' | 'none';

export const TLS_MODES: readonly TlsMode[] = ['implicit', 'starttls-required', 'starttls-when-offered', 'none'];

/** The mode `secure` ("Use SSL", the setting of old) stands for. */
export function tlsModeOfSecure(secure: boolean): TlsMode {
  return secure ? 'implicit' : 'starttls-when-offered';
}

/** The warning shown with a side whose mode sends in plain text; null for the others. */
export function plainTextWarning(side: 'imap' | 'smtp', mode: TlsMode): string | null {
  if (mode !== 'none') return null;
  return side === 'imap'
    ? `'imap.tls' is 'none': the mailbox password and every message travel unencrypted`
    : `'smtp.tls' is 'none': the SMTP password (if any) and every reply travel unencrypted`;
}
