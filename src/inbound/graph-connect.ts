import type { CredentialService } from '../auth/credentials.js';
import type { AddressPolicy } from '../shared/address-policy.js';
import { certificateAdvice } from '../shared/certificate-advice.js';
import { CONNECTION_TEST_TIMEOUT_MS, timedTest, type ConnectionTestResult } from '../shared/connection-test.js';
import { isMailroomError } from '../shared/errors.js';
import { GraphError, graphPlaceOf, openGraphClient, type GraphClient } from '../shared/graph/graph-client.js';
import type { MailProxies } from '../shared/mail-proxies.js';
import type { EmailServerRow } from '../store/rows.js';

export interface GraphConnectDeps {
  credentials: CredentialService;
  proxies?: MailProxies | undefined;
  /** [public addresses only] MAILROOM_MAIL_ALLOW_PRIVATE: where a host a tenant chose may lead. */
  mailAddresses?: AddressPolicy | undefined;
  /** Largest message source read. */
  maxSourceBytes: number;
  timeoutMs?: number;
}

/**
 * The one place a Graph server's row becomes a Graph client (the watcher, Test connection): the
 * Graph host and port (`imap.host`, `imap.port`), the mailbox (`imap.user`), an access token of
 * its sign-in (a fresh one when `forceRefresh`), its CA file and proxy; a host a tenant chose
 * reaches only what MAILROOM_MAIL_ALLOW_PRIVATE allows.
 */
export async function connectGraph(
  server: EmailServerRow,
  deps: GraphConnectDeps,
  forceRefresh = false,
): Promise<GraphClient> {
  const login = await deps.credentials.imapLogin(server, { forceRefresh });
  if (!('accessToken' in login)) throw new Error('Microsoft Graph needs an OAuth 2.0 sign-in');
  const place = graphPlaceOf(server, deps.proxies, deps.mailAddresses);
  return openGraphClient(place, login.accessToken, deps);
}

/** A Graph failure in words an administrator can act on. */
export function describeGraphError(err: unknown): string {
  if (isMailroomError(err)) return err.message;
  if (err instanceof GraphError) {
    if (err.unauthorized) {
      return `Microsoft Graph refused the access token (${err.response}): check the app's Mail permissions and the mailbox name`;
    }
    if (err.status === 403) {
      return `Microsoft Graph refused access to the mailbox (${err.response}): for an app, check the Exchange application access policy or RBAC for Applications`;
    }
    if (err.status === 404) return `Microsoft Graph does not know this mailbox or folder (${err.response})`;
    return err.message;
  }
  const e = err as { message?: unknown; code?: unknown };
  return `${String(e.message ?? err)}${typeof e.code === 'string' ? ` (${e.code})` : ''}`;
}

/** "Test connection" of a Graph server: an access token, and the mailbox's Inbox read with it. */
export function testGraphConnection(server: EmailServerRow, deps: GraphConnectDeps): Promise<ConnectionTestResult> {
  return timedTest(
    async () => {
      const probe = async (forceRefresh: boolean): Promise<void> =>
        (await connectGraph(server, { ...deps, timeoutMs: CONNECTION_TEST_TIMEOUT_MS }, forceRefresh)).probe();
      try {
        await probe(false);
      } catch (err) {
        if (!(err instanceof GraphError) || !err.unauthorized) throw err;
        await probe(true); // as the watcher does: a cached token may have been revoked
      }
      return `Microsoft Graph opened the mailbox ${server.imapUser} with an OAuth 2.0 access token; new mail is polled (delta queries)`;
    },
    (err) => certificateAdvice(err, 'imap.caFile', server.imapCaFile) ?? describeGraphError(err),
  );
}
