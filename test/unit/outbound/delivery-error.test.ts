import assert from 'node:assert/strict';
import {
  certainlyNotDelivered,
  classifyDeliveryError,
  retryDelayMs,
  splitRefusals,
  type FailureKind,
} from '../../../src/outbound/delivery-error.js';

describe('delivery error classification', () => {
  const table: Array<[string, Record<string, unknown>, FailureKind, boolean?]> = [
    ['550 at RCPT', { code: 'EENVELOPE', responseCode: 550, response: '550 5.1.1 no such user' }, 'permanent'],
    ['554 after DATA', { code: 'EMESSAGE', responseCode: 554, response: '554 5.7.1 rejected' }, 'permanent'],
    ['552 too big', { code: 'EMESSAGE', responseCode: 552, response: '552 message too large' }, 'permanent'],
    ['451 at MAIL', { code: 'EENVELOPE', responseCode: 451, response: '451 4.3.0 try later' }, 'transient'],
    ['452 at RCPT', { code: 'EENVELOPE', responseCode: 452, response: '452 4.5.3 too many recipients' }, 'transient'],
    [
      '450 too much mail',
      { code: 'EENVELOPE', responseCode: 450, response: '450 4.7.1 too much mail' },
      'transient',
      true,
    ],
    ['421 greeting', { code: 'EPROTOCOL', responseCode: 421, response: '421 service not available' }, 'unreachable'],
    ['535 auth', { code: 'EAUTH', responseCode: 535, response: '535 5.7.8 bad credentials' }, 'auth'],
    [
      'STARTTLS required but not offered (500 to STARTTLS): no message was offered, nothing to dead-letter',
      { code: 'ETLS', responseCode: 500, response: '500 command not recognized', command: 'STARTTLS' },
      'unreachable',
    ],
    ['a CA file gone bad (no connection made)', { code: 'ECAFILE', message: 'the CA file /ca.pem …' }, 'unreachable'],
    ['EAUTH without code', { code: 'EAUTH' }, 'auth'],
    [
      'credentials unavailable (sign in again)',
      { code: 'CREDENTIALS_UNAVAILABLE', details: { reason: 'REAUTH_REQUIRED' } },
      'auth',
    ],
    ['refused', { code: 'ESOCKET', message: 'connect ECONNREFUSED 127.0.0.1:1' }, 'unreachable'],
    ['proxy refused the tunnel', { code: 'EPROXY', message: 'the proxy p:3128 refused a tunnel' }, 'unreachable'],
    ['dropped', { code: 'ECONNECTION', message: 'Connection closed unexpectedly' }, 'unreachable'],
    ['timeout', { code: 'ETIMEDOUT', message: 'Greeting never received' }, 'unreachable'],
    ['DNS', { code: 'EDNS', message: 'getaddrinfo ENOTFOUND' }, 'unreachable'],
    ['unknown library error', { code: 'ESTRANGE', message: 'odd' }, 'transient'],
    ['not an object', {}, 'transient'],
  ];
  for (const [what, err, kind, throttled] of table) {
    it(`${what} → ${kind}`, () => {
      const got = classifyDeliveryError(err);
      assert.equal(got.kind, kind);
      assert.equal(got.throttled, throttled ?? false);
      if (typeof err.responseCode === 'number') assert.equal(got.responseCode, err.responseCode);
    });
  }

  it('backs off exponentially, capped, and longer for throttling', () => {
    assert.equal(retryDelayMs(1, false), 60_000);
    assert.equal(retryDelayMs(3, false), 240_000);
    assert.equal(retryDelayMs(30, false), 3_600_000);
    assert.equal(retryDelayMs(1, true), 900_000);
  });
});

describe('whether a failed delivery surely sent nothing (the rate limit gives its place back)', () => {
  const cases: Array<[string, unknown, boolean]> = [
    ['550 at RCPT', { code: 'EENVELOPE', responseCode: 550, response: '550 5.1.1 no such user' }, true],
    ['451 at MAIL', { code: 'EENVELOPE', responseCode: 451, response: '451 try later' }, true],
    ['554 after the final dot', { code: 'EMESSAGE', responseCode: 554, response: '554 rejected' }, true],
    ['421 greeting', { code: 'EPROTOCOL', responseCode: 421, response: '421 busy' }, true],
    ['535 authentication', { code: 'EAUTH', responseCode: 535 }, true],
    ['refused connection', { code: 'ECONNREFUSED' }, true],
    [
      'refused connection as nodemailer reports it',
      { code: 'ESOCKET', originalCode: 'ECONNREFUSED', errno: -111, syscall: 'connect', command: 'CONN' },
      true,
    ],
    ['unknown host', { code: 'EDNS', originalCode: 'ENOTFOUND', command: 'CONN' }, true],
    ['proxy refused the tunnel', { code: 'EPROXY' }, true],
    ['socket error on an open connection', { code: 'ESOCKET', originalCode: 'EPIPE', syscall: 'write' }, false],
    ['no credentials', { code: 'CREDENTIALS_UNAVAILABLE' }, true],
    ['connection lost mid-DATA', { code: 'ECONNECTION', message: 'Connection closed unexpectedly' }, false],
    ['connection reset after the dot', { code: 'ECONNRESET' }, false],
    ['timeout', { code: 'ETIMEDOUT' }, false],
    ['unknown error', new Error('boom'), false],
    ['not an object', 'boom', false],
  ];
  for (const [name, err, expected] of cases) {
    it(`${name}: ${expected ? 'nothing sent' : 'may have been delivered'}`, () => {
      assert.equal(certainlyNotDelivered(err), expected);
    });
  }
});

describe('splitRefusals: recipients refused while the others got the message', () => {
  it('takes 5xx as refused for good, 4xx and no code as refused for now', () => {
    const r = (address: string, responseCode: number | null) => ({ address, responseCode });
    const { permanent, temporary } = splitRefusals([r('a', 550), r('b', 452), r('c', 421), r('d', 553), r('e', null)]);
    assert.deepEqual(
      permanent.map((x) => x.address),
      ['a', 'd'],
    );
    assert.deepEqual(
      temporary.map((x) => x.address),
      ['b', 'c', 'e'],
    );
  });
});
