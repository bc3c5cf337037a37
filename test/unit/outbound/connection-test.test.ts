import assert from 'node:assert/strict';
import { describeSmtpTestError } from '../../../src/outbound/connection-test.js';

/** Test connection's SMTP side in plain words, for the failures nodemailer reports by its codes. */
describe('SMTP connection test wording', () => {
  it('says a host name does not resolve, naming it, instead of "getaddrinfo ENOTFOUND h"', () => {
    // nodemailer passes the resolver's error on (code EDNS, or the system's own code) with its message.
    for (const err of [
      Object.assign(new Error('getaddrinfo ENOTFOUND h'), { code: 'EDNS' }),
      Object.assign(new Error('getaddrinfo ENOTFOUND h'), { code: 'ENOTFOUND', hostname: 'h' }),
    ]) {
      assert.equal(describeSmtpTestError(err), "the host name 'h' does not resolve: check the SMTP host (ENOTFOUND)");
    }
    assert.match(
      describeSmtpTestError(Object.assign(new Error('getaddrinfo EAI_AGAIN smtp.example.com'), { code: 'EDNS' })),
      /could not be looked up just now/,
    );
  });

  it('words refused connections, timeouts and refused logins', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:2'), { code: 'ESOCKET' });
    assert.equal(
      describeSmtpTestError(refused),
      'the server refused the connection: check the SMTP host and port (ECONNREFUSED)',
    );
    const timeout = Object.assign(new Error('Connection timeout'), { code: 'ETIMEDOUT' });
    assert.match(describeSmtpTestError(timeout), /did not answer in time/);
    const login = Object.assign(new Error('Invalid login: 535 5.7.8 bad credentials'), {
      code: 'EAUTH',
      responseCode: 535,
      response: '535 5.7.8 bad credentials',
    });
    assert.equal(
      describeSmtpTestError(login),
      'the server refused the login: 535 5.7.8 bad credentials (check the user name and password)',
    );
  });
});
