import { isIP } from 'node:net';
import { firstRefused, resolveAll, type ResolveAll } from './address-lookup.js';
import { AddressNotAllowedError, type AddressPolicy } from './address-policy.js';
import { canonicalHost } from './host-key.js';

/**
 * Where an IMAP or SMTP connection goes: `host` is what the socket connects to, `servername` the
 * name TLS presents (SNI) and checks the certificate against, when `host` is an address that
 * stands for a name.
 */
export interface MailTarget {
  host: string;
  servername?: string;
}

/**
 * The address to connect to for a host a tenant chose (an e-mail server's `hostsByTenant`),
 * checked against MAILROOM_MAIL_ALLOW_PRIVATE: an IP address in any spelling (`127.1`,
 * `::ffff:127.0.0.1`, `localhost`) as its canonical address, a name resolved here with every
 * address it has allowed, then connected to by the first of them with the name kept for TLS. The
 * socket connects to the very address that was checked: a name cannot answer a public address to
 * the check and a private one to the connection (DNS rebinding), as `policyLookup` does for
 * webhooks (imapflow and nodemailer take no `lookup`, but both take a `servername`).
 *
 * Through a proxy the proxy resolves the name: a name that does not resolve here is handed to it
 * as it is (the engine may have no DNS of its own beyond its proxy); one that does is checked and
 * the proxy asked for the address. Fails with AddressNotAllowedError (code EADDRNOTALLOWED).
 *
 * @param policy undefined: the operator's host, connected to as it is
 */
export async function mailTarget(
  host: string,
  policy: AddressPolicy | undefined,
  options: { viaProxy?: boolean; resolve?: ResolveAll } = {},
): Promise<MailTarget> {
  if (policy === undefined) return { host };
  const canonical = canonicalHost(host);
  if (isIP(canonical) !== 0) {
    const kind = policy.refuses(canonical);
    if (kind !== undefined) throw new AddressNotAllowedError(host, canonical, kind);
    // `localhost` (and names under it) is loopback without asking a resolver; TLS still checks
    // the certificate against the name.
    const name = host.trim().replace(/\.$/, '').toLowerCase();
    return /(?:^|\.)localhost$/.test(name) ? { host: canonical, servername: name } : { host: canonical };
  }
  let addresses: string[];
  try {
    addresses = (await (options.resolve ?? resolveAll)(canonical)).map((a) => a.address);
  } catch (err) {
    if (options.viaProxy === true) return { host };
    throw err;
  }
  const refused = firstRefused(policy, host, addresses);
  if (refused) throw refused;
  const first = addresses[0];
  if (first === undefined) {
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  }
  return { host: first, servername: canonical };
}

/** An address refused by MAILROOM_MAIL_ALLOW_PRIVATE, in words for a server's status and Test connection. */
export function describeRefusedAddress(err: unknown, side: 'IMAP' | 'SMTP'): string | undefined {
  if (!(err instanceof AddressNotAllowedError)) return undefined;
  return (
    `the ${side} host leads to an address the engine does not connect to for a host a tenant set (${err.kind}): ` +
    `choose a public host, or ask the engine's operator (MAILROOM_MAIL_ALLOW_PRIVATE, or setting the server up with an administrator token)`
  );
}
