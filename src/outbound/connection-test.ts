import type { CredentialService } from '../auth/credentials.js';
import { certificateAdvice } from '../shared/certificate-advice.js';
import {
  CONNECTION_TEST_TIMEOUT_MS,
  inClear,
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
    let encrypted: boolean;
    try {
      ({ loggedIn, encrypted } = await transport.probe());
    } finally {
      transport.close();
    }
    const how = oauthUser !== undefined ? ' with an OAuth 2.0 access token' : '';
    if (loggedIn && login) {
      return { detail: `connected and logged in as ${login.user}${how}${inClear(encrypted, server.smtpTls)}` };
    }
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
        : (certificateAdvice(err, 'smtp.caFile', server.smtpCaFile) ?? describeSmtpTestError(err));
    },
  );
}

/** The SMTP side's failure in plain words, as the IMAP side says its own (no library jargon alone). */
export function describeSmtpTestError(err: unknown): string {
  if (isMailroomError(err)) return err.message;
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; message?: unknown };
  const text = typeof e.message === 'string' ? e.message : String(err);
  const code = typeof e.code === 'string' ? e.code : '';
  const dns = /getaddrinfo (ENOTFOUND|EAI_AGAIN|ENODATA) (\S+)/.exec(text);
  if (dns) {
    return dns[1] === 'EAI_AGAIN'
      ? `the host name '${dns[2]}' could not be looked up just now (the name server did not answer): try again, or check the SMTP host (${dns[1]})`
      : `the host name '${dns[2]}' does not resolve: check the SMTP host (${dns[1]})`;
  }
  if (code === 'ECONNREFUSED' || /\bECONNREFUSED\b/.test(text)) {
    return 'the server refused the connection: check the SMTP host and port (ECONNREFUSED)';
  }
  if (['EHOSTUNREACH', 'ENETUNREACH'].includes(code) || /\bE(HOST|NET)UNREACH\b/.test(text)) {
    return `the server cannot be reached from here: check the SMTP host and the network (${code || 'unreachable'})`;
  }
  if (code === 'ETIMEDOUT' || /timeout/i.test(text)) {
    return 'the server did not answer in time: check the SMTP host, the port and any firewall on the way (ETIMEDOUT)';
  }
  const failure = classifyDeliveryError(err);
  if (failure.kind === 'auth')
    return `the server refused the login: ${failure.reply} (check the user name and password)`;
  return failure.reply;
}
