import type { CredentialService } from '../auth/credentials.js';
import { certificateAdvice } from '../shared/certificate-advice.js';
import { CONNECTION_TEST_TIMEOUT_MS, timedTest, type ConnectionTestResult } from '../shared/connection-test.js';
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
  return timedTest(
    async () => {
      const login = await deps.credentials.smtpLogin(server);
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
      if (loggedIn && login) return `connected and logged in as ${login.user}`;
      return login
        ? `connected, but the server offers no login (AUTH): the user name and password are not used`
        : 'connected (no login: the relay takes mail as it is)';
    },
    (err) =>
      isMailroomError(err)
        ? err.message
        : (certificateAdvice(err, 'smtp.caFile', server.smtpCaFile) ?? classifyDeliveryError(err).reply),
  );
}
