import assert from 'node:assert/strict';
import { describeOAuthError } from '../../../src/auth/oauth/describe-error.js';

describe('describeOAuthError', () => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    [
      'revoked refresh token',
      { errorCode: 'invalid_grant', errorMessage: 'AADSTS50173: revoked' },
      'REAUTH_REQUIRED',
      /sign in again/,
    ],
    [
      'wrong client secret',
      { errorCode: 'invalid_client', errorMessage: 'AADSTS7000215: Invalid client secret' },
      'ERROR',
      /client secret is wrong/,
    ],
    [
      'expired client secret',
      { errorCode: 'invalid_client', errorMessage: 'AADSTS7000222: expired' },
      'ERROR',
      /has expired/,
    ],
    [
      'unknown app',
      { errorCode: 'unauthorized_client', errorMessage: 'AADSTS700016: not found' },
      'ERROR',
      /client\) ID is not registered/,
    ],
    ['missing consent', { errorCode: 'invalid_grant', errorMessage: 'AADSTS65001: consent' }, 'ERROR', /admin consent/],
    [
      'unknown directory',
      { errorCode: 'endpoints_resolution_error', errorMessage: '' },
      'ERROR',
      /directory \(tenant\) ID/,
    ],
    ['code not used in time', { errorCode: 'expired_token' }, 'EXPIRED', /not entered in time/],
    ['provider down', { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, 'ERROR', /cannot be reached/],
    ['something else', new Error('boom'), 'ERROR', /refused the request/],
  ];
  for (const [title, err, status, message] of cases) {
    it(title, () => {
      const failure = describeOAuthError(err);
      assert.equal(failure.status, status);
      assert.match(failure.message, message);
    });
  }
});
