import { certificateAdvice } from '../shared/certificate-advice.js';
import {
  CONNECTION_TEST_TIMEOUT_MS,
  inClear,
  oauthRefused,
  timedTest,
  type ConnectionTestResult,
} from '../shared/connection-test.js';
import { isMailroomError } from '../shared/errors.js';
import type { EmailServerRow } from '../store/rows.js';
import { connectImap, type ImapConnectDeps } from './imap-connect.js';
import { describeImapError, isAuthFailure } from './imap-errors.js';

/**
 * "Test connection", IMAP side: connects to the server as its settings say, logs in and logs out
 * (whether or not it is enabled or watched anywhere); the outcome in plain words.
 */
export function testImapConnection(server: EmailServerRow, deps: ImapConnectDeps): Promise<ConnectionTestResult> {
  const oauth = server.imapAuthMethod === 'oauth2';
  /** Whether the server refused the access token even after a fresh one (for the wording). */
  let refusedFresh = false;
  const attempt = async (forceRefresh: boolean): Promise<string> => {
    const session = await connectImap(server, deps, {
      forceRefresh,
      connectionTimeoutMs: CONNECTION_TEST_TIMEOUT_MS,
      greetingTimeoutMs: CONNECTION_TEST_TIMEOUT_MS,
      socketTimeoutMs: CONNECTION_TEST_TIMEOUT_MS,
    });
    const idle = session.supportsIdle;
    const encrypted = session.encrypted;
    await session.close();
    const how = oauth ? ' with an OAuth 2.0 access token' : '';
    return `connected and logged in as ${session.user}${how}${inClear(encrypted, server.imapTls)}; ${idle ? 'new mail is announced (IDLE)' : 'no IDLE: the mailbox will be polled'}`;
  };
  return timedTest(
    async () => {
      try {
        return await attempt(false);
      } catch (err) {
        // As the watcher does: an access token the server refused may just have expired or been
        // revoked since it was cached; a fresh one from the identity provider, once.
        if (!oauth || !isAuthFailure(err)) throw err;
        try {
          return await attempt(true);
        } catch (again) {
          refusedFresh = isAuthFailure(again);
          throw again;
        }
      }
    },
    (err) => {
      if (refusedFresh) return oauthRefused('IMAP', server.imapUser, err);
      return (
        certificateAdvice(err, 'imap.caFile', server.imapCaFile) ??
        describeImapError(
          err,
          isAuthFailure(err) || isMailroomError(err, 'CREDENTIALS_UNAVAILABLE') ? 'authError' : 'connectError',
        )
      );
    },
  );
}
