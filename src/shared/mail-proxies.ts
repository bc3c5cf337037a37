import { MailroomError } from './errors.js';

/**
 * The proxies IMAP and SMTP connections may go through (HTTP CONNECT), as the engine is
 * configured: the default one (MAILROOM_MAIL_PROXY), taken by every e-mail server that chooses
 * none, and named ones (MAILROOM_PROXIES) a server can choose, as the reference's per-server
 * "Proxy" list does. A server may also choose `none`: connect directly even when there is a
 * default (an on-premises server beside cloud ones that need the proxy).
 */
export interface MailProxies {
  default?: URL | undefined;
  named: ReadonlyMap<string, URL>;
}

/** The choice of a server that connects directly, whatever the default. */
export const NO_PROXY = 'none';

/** What a proxy name may be: a word of letters, digits, `.`, `_` and `-` (not `none`). */
export const PROXY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The proxy a server's connections go through: its named proxy, none for `none`, else the
 * default. A name the engine is not configured with fails (PROXY_NOT_CONFIGURED), so that a
 * server never silently connects another way than its administrator chose.
 */
export function proxyFor(choice: string | null, proxies: MailProxies | undefined): URL | undefined {
  if (choice === null) return proxies?.default;
  if (choice === NO_PROXY) return undefined;
  const named = proxies?.named.get(choice);
  if (!named) {
    throw new MailroomError(
      'PROXY_NOT_CONFIGURED',
      `the e-mail server chooses the proxy '${choice}', which is not configured in this engine: add it to ` +
        `MAILROOM_PROXIES (and restart), or choose another proxy for the server (its 'proxy' setting)`,
    );
  }
  return named;
}

/** A proxy URL for messages: its password (and user) left out. */
export function proxyLabel(url: URL): string {
  return `${url.protocol}//${url.host}`;
}
