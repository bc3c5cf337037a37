/** Header names whose addresses Microsoft Graph sends a MIME message to (it has no SMTP envelope). */
const RECIPIENT_HEADERS = /^(to|cc|bcc):(.*)$/i;

/**
 * The addresses of a MIME message's To, Cc and Bcc headers, lower-cased: what Graph's sendMail
 * sends to (https://learn.microsoft.com/graph/outlook-send-mime-message). Folded lines are
 * unfolded; `Name <a@b>` and bare `a@b` are read; the body is not looked at.
 */
export function headerAddresses(raw: Buffer): Set<string> {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end < 0 ? raw.length : end).toString('utf8');
  const found = new Set<string>();
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const m = RECIPIENT_HEADERS.exec(line);
    if (!m) continue;
    for (const a of (m[2] as string).matchAll(/<([^<>\s]+@[^<>\s]+)>|([^\s,<>"]+@[^\s,<>"]+)/g)) {
      found.add((a[1] ?? a[2] ?? '').toLowerCase());
    }
  }
  return found;
}
