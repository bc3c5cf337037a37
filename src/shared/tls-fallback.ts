/**
 * "Use SSL" means an encrypted connection, found the way the reference describes (the protocol
 * auto-detected, the safest first): TLS from the first byte (ports 465 and 993), else, when the
 * server answers that handshake in plain text (a STARTTLS port such as 587 or 143 with the flag
 * ticked, as in the Office 365 example: smtp.office365.com:587), STARTTLS, required. Never plain
 * text: a server that offers neither is refused.
 */

/** Whether a TLS handshake failed because the server spoke plain text (its greeting) instead of TLS. */
export function spokePlainText(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; originalCode?: unknown; reason?: unknown };
  return (
    e.code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
    e.originalCode === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
    e.reason === 'wrong version number' ||
    e.code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' ||
    e.originalCode === 'ERR_SSL_PACKET_LENGTH_TOO_LONG'
  );
}
