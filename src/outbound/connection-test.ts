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
import type { AddressPolicy } from '../shared/address-policy.js';
import type { MailProxies } from '../shared/mail-proxies.js';
import { describeRefusedAddress } from '../shared/mail-target.js';
import type { EmailServerRow } from '../store/rows.js';
import { classifyDeliveryError } from './delivery-error.js';
import { SmtpTransport, smtpTransportOptions } from './smtp-transport.js';
import { graphTransportFor } from './graph-transport.js';

/** What a sending side's connection test needs besides the server's row. */
export interface SendTestDeps {
  credentials: CredentialService;
  proxies?: MailProxies | undefined;
  /** [public addresses only] MAILROOM_MAIL_ALLOW_PRIVATE: where a host a tenant chose may lead. */
  mailAddresses?: AddressPolicy | undefined;
}

/**
 * "Test connection", SMTP side: connects to the account's relay as its settings say and logs in
 * (when it has a login), without sending; the outcome in plain words. No queue is touched.
 */
export function testSmtpConnection(server: EmailServerRow, deps: SendTestDeps): Promise<ConnectionTestResult> {
  if (server.protocol === 'graph') return testGraphSend(server, deps);
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
        deps.mailAddresses,
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

/** The start of an SMTP reply (RFC 5321 section 4.2): a three-digit code, then a space, a hyphen or the end. */
const SMTP_REPLY = /^[2-5]\d\d(?:[ -]|\r?$)/;

/** What a server that answered something other than SMTP looks like, in a few words (never its bytes). */
export function foreignAnswer(answer: string): string {
  if (answer === '') return 'no answer it could read';
  if (/^\* (?:OK|PREAUTH|BYE)\b/i.test(answer)) return 'it greets as an IMAP server';
  if (/^\+OK\b/.test(answer)) return 'it greets as a POP3 server';
  if (/^SSH-/.test(answer)) return 'it greets as an SSH server';
  if (/^HTTP\/\d/.test(answer)) return 'it answers as a web server';
  if (SMTP_REPLY.test(answer)) return 'an SMTP reply out of place';
  // eslint-disable-next-line no-control-regex -- looking for bytes that are not text
  return /[\x00-\x08\x0e-\x1f\x7f]/.test(answer) ? 'it answers in a binary protocol' : 'its answer is not SMTP';
}

/** The SMTP side's failure in plain words, as the IMAP side says its own (no library jargon alone). */
export function describeSmtpTestError(err: unknown): string {
  if (isMailroomError(err)) return err.message;
  const refused = describeRefusedAddress(err, 'SMTP');
  if (refused !== undefined) return refused;
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    code?: unknown;
    message?: unknown;
    response?: unknown;
  };
  const text = typeof e.message === 'string' ? e.message : String(err);
  const code = typeof e.code === 'string' ? e.code : '';
  // What answered is no SMTP server: say what it looks like, never its bytes (an outside review
  // read an IMAP greeting and a database's handshake through this detail: issue 24).
  const answer = typeof e.response === 'string' ? e.response : /response=([\s\S]*)$/.exec(text)?.[1];
  if (code === 'EPROTOCOL' || (answer !== undefined && !SMTP_REPLY.test(answer))) {
    return `the server at this host and port does not answer as an SMTP server (${foreignAnswer(answer ?? '')}): check the SMTP host and port`;
  }
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

/**
 * "Test connection", sending side of a Microsoft Graph server: an access token of its sign-in
 * opens the mailbox (nothing is sent; sendMail has no dry run).
 */
function testGraphSend(server: EmailServerRow, deps: SendTestDeps): Promise<ConnectionTestResult> {
  return timedTest(
    async () => {
      const verify = async (forceRefresh: boolean): Promise<void> => {
        const login = await deps.credentials.smtpLogin(server, { forceRefresh });
        const transport = await graphTransportFor(server, login, { ...deps, timeoutMs: CONNECTION_TEST_TIMEOUT_MS });
        await transport.verify();
      };
      try {
        await verify(false);
      } catch (err) {
        if (classifyDeliveryError(err).kind !== 'auth' || isMailroomError(err)) throw err;
        await verify(true);
      }
      return `Microsoft Graph accepts the sign-in for ${server.imapUser}: mail is sent with sendMail (MIME)`;
    },
    (err) =>
      isMailroomError(err)
        ? err.message
        : (certificateAdvice(err, 'imap.caFile', server.imapCaFile) ?? String((err as Error).message ?? err)),
  );
}
