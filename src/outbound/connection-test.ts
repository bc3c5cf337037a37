import type { CredentialService } from '../auth/credentials.js';
import { certificateAdvice } from '../shared/certificate-advice.js';
import {
  CONNECTION_TEST_TIMEOUT_MS,
  oauthRefused,
  timedTest,
  type ConnectionTestResult,
} from '../shared/connection-test.js';
import { isMailroomError } from '../shared/errors.js';
import type { MailProxies } from '../shared/mail-proxies.js';
import type { EmailServerRow } from '../store/rows.js';
import { classifyDeliveryError } from './delivery-error.js';
import { SmtpTransport, smtpTransportOptions } from './smtp-transport.js';

/**
 * "Test connection", SMTP side: connects to the account's relay as its settings say and logs in
 * (when it has a login), without sending; the outcome in plain words. No queue is touched.
 */
export function testSmtpConnection(
  server: EmailServerRow,
  deps: { credentials: CredentialService; proxies?: MailProxies | undefined },
): Promise<ConnectionTestResult> {
  /** The user whose fresh access token the server refused too (for the wording), if it did. */
  let refusedFresh: string | undefined;
  /** The user of the access token the last attempt presented (none: a password or no login). */
  let presented: string | undefined;
  const attempt = async (forceRefresh: boolean): Promise<{ detail: string }> => {
    presented = undefined;
    const login = await deps.credentials.smtpLogin(server, { forceRefresh });
    const oauthUser = login && 'accessToken' in login ? login.user : undefined;
    presented = oauthUser;
    const transport = new SmtpTransport(
      smtpTransportOptions(
        server,
        login,
        {
          connectionMs: CONNECTION_TEST_TIMEOUT_MS,
          greetingMs: CONNECTION_TEST_TIMEOUT_MS,
          socketMs: CONNECTION_TEST_TIMEOUT_MS,
        },
        deps.proxies,
      ),
    );
    let loggedIn: boolean;
    try {
      loggedIn = await transport.verify();
    } finally {
      transport.close();
    }
    const how = oauthUser !== undefined ? ' with an OAuth 2.0 access token' : '';
    if (loggedIn && login) return { detail: `connected and logged in as ${login.user}${how}` };
    return {
      detail: login
        ? `connected, but the server offers no login (AUTH): the user name and password are not used`
        : 'connected (no login: the relay takes mail as it is)',
    };
  };
  return timedTest(
    async () => {
      try {
        return (await attempt(false)).detail;
      } catch (err) {
        // As the queue does: an access token the server refused may just have expired or been
        // revoked since it was cached; a fresh one from the identity provider, once.
        const user = presented;
        if (user === undefined || classifyDeliveryError(err).kind !== 'auth') throw err;
        try {
          return (await attempt(true)).detail;
        } catch (again) {
          if (classifyDeliveryError(again).kind === 'auth' && !isMailroomError(again)) refusedFresh = user;
          throw again;
        }
      }
    },
    (err) => {
      if (refusedFresh !== undefined) return oauthRefused('SMTP', refusedFresh, err);
      return isMailroomError(err)
        ? err.message
        : (certificateAdvice(err, 'smtp.caFile', server.smtpCaFile) ?? classifyDeliveryError(err).reply);
    },
  );
}
