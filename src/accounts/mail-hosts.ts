import { checkHost, resolveAll, type ResolveAll } from '../shared/address-lookup.js';
import type { AddressPolicy } from '../shared/address-policy.js';
import { MailroomError } from '../shared/errors.js';
import { canonicalHost } from '../shared/host-key.js';
import type { EmailServerRow } from '../store/rows.js';

/** [5000] longest wait for the resolution of a mail host's name at validation, ms. */
const RESOLVE_TIMEOUT_MS = 5_000;

/**
 * Who makes a change of an e-mail server: a tenant's token, or the operator (an administrator
 * token, the CLI, the engine's own code). Where a server's connections go is the operator's to
 * decide without limits (tests and the README walkthrough use 127.0.0.1); a tenant's choice
 * reaches only the addresses MAILROOM_MAIL_ALLOW_PRIVATE allows (public ones by default): an
 * outside review holding a tenant's token used "Test connection" on 127.0.0.1 and
 * 169.254.169.254 as a port scanner, a banner grabber, a relay through an internal SMTP server
 * and a login oracle (issue 24).
 */
export type ChangedBy = 'tenant' | 'operator';

type Endpoints = Pick<EmailServerRow, 'imapHost' | 'imapPort' | 'smtpHost' | 'smtpPort' | 'proxy'>;

/** Whether the connections of `next` go anywhere `current`'s did not: a host, a port or the proxy changed. */
function endpointsMoved(current: Endpoints, next: Endpoints): boolean {
  return (
    canonicalHost(current.imapHost) !== canonicalHost(next.imapHost) ||
    canonicalHost(current.smtpHost) !== canonicalHost(next.smtpHost) ||
    current.imapPort !== next.imapPort ||
    current.smtpPort !== next.smtpPort ||
    current.proxy !== next.proxy
  );
}

/** Whether a request body names both hosts: the operator then takes both over. */
function namesBothHosts(body: unknown): boolean {
  const side = (key: 'imap' | 'smtp'): unknown =>
    typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  const hasHost = (s: unknown): boolean => typeof s === 'object' && s !== null && 'host' in s;
  return hasHost(side('imap')) && hasHost(side('smtp'));
}

/**
 * Whether the server's connections follow a tenant's choice after a change (the row's
 * `hostsByTenant`), and whether that choice is new (then its hosts are checked now):
 *
 * - a server a tenant creates: its choice;
 * - a tenant changing a host, a port or the proxy (a copy too): its choice from then on; other
 *   changes (a name, a password, a user name on the operator's server) keep what was;
 * - the operator creating one, or naming both hosts in a change: the operator's; any other
 *   operator change keeps what was (a tenant's host stays checked).
 */
export function hostsChoice(
  by: ChangedBy,
  current: (Endpoints & Pick<EmailServerRow, 'hostsByTenant'>) | null,
  next: Endpoints,
  body: unknown,
): { hostsByTenant: boolean; check: boolean } {
  if (by === 'operator') {
    return { hostsByTenant: current !== null && current.hostsByTenant && !namesBothHosts(body), check: false };
  }
  const moved = current === null || endpointsMoved(current, next);
  return { hostsByTenant: moved || current.hostsByTenant, check: moved };
}

/**
 * Refuses a tenant's hosts that lead where the policy forbids (an IP address in any spelling as
 * it is, a name by resolving it now; a name that does not resolve now is left to the connection,
 * which checks the addresses it connects to: `shared/mail-target.ts`), naming `imap.host` or
 * `smtp.host`.
 */
export async function checkMailHosts(
  policy: AddressPolicy,
  next: Pick<EmailServerRow, 'imapHost' | 'smtpHost'>,
  resolve: ResolveAll = resolveAll,
): Promise<void> {
  for (const [field, host] of [
    ['imap.host', next.imapHost],
    ['smtp.host', next.smtpHost],
  ] as const) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<{ refused?: undefined }>((done) => {
      timer = setTimeout(() => done({}), RESOLVE_TIMEOUT_MS);
    });
    try {
      const { refused } = await Promise.race([checkHost(policy, canonicalHost(host), resolve), timeout]);
      if (refused) {
        throw new MailroomError(
          'VALIDATION_FAILED',
          `'${field}' leads to an address the engine does not connect to for a tenant (${refused.kind}); ` +
            `the engine's operator can allow it (MAILROOM_MAIL_ALLOW_PRIVATE) or set the server up with an administrator token`,
          { field },
        );
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
