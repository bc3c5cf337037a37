import assert from 'node:assert/strict';
import { checkServerInput } from '../../../src/accounts/server-form.js';
import type { ServerInput } from '../../../src/accounts/schemas.js';
import {
  GMAIL_SCOPE,
  signedAssertion,
  describeServiceAccountError,
  ServiceAccountRefused,
} from '../../../src/auth/oauth/service-account.js';
import {
  GoogleServiceAccounts,
  makeServiceAccountKeyFile,
} from '../../../src/harness/fake-idp/google-service-accounts.js';
import { parseServiceAccountKey } from '../../../src/shared/service-account-key.js';

const TOKEN_URL = 'https://127.0.0.1:1/token';
const NOW = 1_764_000_000_000;

describe('auth/oauth/service-account (JWT bearer grant) against the fake Google endpoint', () => {
  const email = 'sa@project.iam.gserviceaccount.com';
  const { keyFile, publicKey } = makeServiceAccountKeyFile(email);
  const key = parseServiceAccountKey(keyFile);
  const issued: string[] = [];
  const google = new GoogleServiceAccounts({
    tokenUrl: () => TOKEN_URL,
    now: () => NOW,
    issue: (user) => {
      issued.push(user);
      return `token-for-${user}`;
    },
  });
  google.add({ clientEmail: email, publicKey, delegatedScopes: [GMAIL_SCOPE], users: ['support@ws.test'] });
  const claims = {
    issuer: email,
    subject: 'support@ws.test',
    audience: TOKEN_URL,
    scope: GMAIL_SCOPE,
    nowSeconds: NOW / 1000,
  };
  const ask = (assertion: string) =>
    google.token(new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }));

  it('signs an RS256 JWT with iss, sub, scope, aud, iat and exp an hour later, and kid from the key file', () => {
    const jwt = signedAssertion(key, claims);
    const [header, body] = jwt
      .split('.')
      .slice(0, 2)
      .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>);
    assert.equal(header?.alg, 'RS256');
    assert.equal(typeof header?.kid, 'string');
    assert.deepEqual(body, {
      iss: email,
      sub: 'support@ws.test',
      scope: GMAIL_SCOPE,
      aud: TOKEN_URL,
      iat: NOW / 1000,
      exp: NOW / 1000 + 3600,
    });
    const reply = ask(jwt);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.access_token, 'token-for-support@ws.test');
    assert.equal(reply.body.token_type, 'Bearer');
  });

  it('refuses a wrong signature, audience, time window, user and an undelegated scope as Google does', () => {
    const other = parseServiceAccountKey(makeServiceAccountKeyFile(email).keyFile);
    const error = (jwt: string) => ask(jwt).body.error;
    assert.equal(error(signedAssertion(other, claims)), 'invalid_grant');
    assert.equal(error(signedAssertion(key, { ...claims, audience: 'https://elsewhere/token' })), 'invalid_grant');
    assert.equal(error(signedAssertion(key, { ...claims, nowSeconds: NOW / 1000 - 7200 })), 'invalid_grant');
    assert.equal(error(signedAssertion(key, { ...claims, subject: 'stranger@ws.test' })), 'invalid_grant');
    assert.equal(
      error(signedAssertion(key, { ...claims, scope: 'https://www.googleapis.com/auth/drive' })),
      'unauthorized_client',
    );
  });

  it('puts unauthorized_client in words that name the missing delegation', () => {
    const failure = describeServiceAccountError(
      new ServiceAccountRefused('unauthorized_client', 'Client is unauthorized', 401),
      email,
      'support@ws.test',
    );
    assert.equal(failure.status, 'ERROR');
    assert.match(
      failure.message,
      /domain-wide delegation is not granted.*Admin console.*https:\/\/mail\.google\.com\//,
    );
  });

  it("keeps maxSessions within Gmail's 15 connections", () => {
    const input = (host: string, maxSessions: number): ServerInput => ({
      name: 'Gmail',
      imap: { host, user: 'support@ws.test', auth: { method: 'password', password: 'x' }, maxSessions },
      smtp: { host: 'smtp.gmail.com', port: 465, auth: { mode: 'imap' } },
    });
    assert.throws(
      () => checkServerInput(input('imap.gmail.com', 16)),
      /'imap\.maxSessions' must be at most 15 for Gmail/,
    );
    checkServerInput(input('imap.gmail.com', 15));
    checkServerInput(input('imap.example.com', 40));
  });
});
