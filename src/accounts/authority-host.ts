import { checkHost, resolveAll, type ResolveAll } from '../shared/address-lookup.js';
import type { AddressPolicy } from '../shared/address-policy.js';
import { MailroomError } from '../shared/errors.js';
import type { EmailServerRow } from '../store/rows.js';

/** [5000] longest wait for the resolution of an authority's host name at validation, ms. */
const RESOLVE_TIMEOUT_MS = 5_000;

/**
 * An OAuth 2.0 `authorityHost` is a tenant's setting that the engine sends requests to (device
 * codes, tokens, client secrets): like a webhook URL, it must lead to addresses the policy allows
 * (MAILROOM_OAUTH_ALLOW_PRIVATE), or a tenant could have the engine probe its internal network.
 * Checked here when a side names a new one (an IP address as it is, a name by resolving it now;
 * one that does not resolve now is left to the connection, which checks every address it
 * connects to: oauth/http-client.ts), and again at each connection against DNS rebinding.
 */
export async function checkAuthorityHosts(
  policy: AddressPolicy,
  next: Pick<EmailServerRow, 'imapOAuth' | 'smtpOAuth'>,
  current: Pick<EmailServerRow, 'imapOAuth' | 'smtpOAuth'> | null,
  resolve: ResolveAll = resolveAll,
): Promise<void> {
  for (const side of ['imap', 'smtp'] as const) {
    const authority = next[`${side}OAuth`]?.authorityHost;
    if (authority === undefined || authority === current?.[`${side}OAuth`]?.authorityHost) continue;
    const host = new URL(authority).hostname;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<{ refused?: undefined }>((done) => {
      timer = setTimeout(() => done({}), RESOLVE_TIMEOUT_MS);
    });
    try {
      const { refused } = await Promise.race([checkHost(policy, host, resolve), timeout]);
      if (refused) {
        const field = `${side}.auth.authorityHost`;
        throw new MailroomError(
          'VALIDATION_FAILED',
          `'${field}' leads to an address the engine may not send sign-ins to (${refused.kind}); ` +
            `the engine's operator can allow it (MAILROOM_OAUTH_ALLOW_PRIVATE)`,
          { field },
        );
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
