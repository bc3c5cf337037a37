import assert from 'node:assert/strict';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { AddressPolicy } from '../../src/shared/address-policy.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { deviceCodeAuth } from '../support/fixtures.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * An e-mail server's OAuth 2.0 authorityHost is a tenant's setting the engine sends requests to:
 * the same address policy as webhooks (public addresses unless MAILROOM_OAUTH_ALLOW_PRIVATE
 * allows more), when it is set and at each connection.
 */
describe('OAuth 2.0 authority host address policy [pglite]', function () {
  this.timeout(60_000);
  let h: ApiHarness | undefined;
  let idp: FakeIdp;

  beforeEach(async () => {
    idp = await startFakeIdp({ pollIntervalSeconds: 1 });
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
    await idp.close();
  });

  const serverBody = (authorityHost: string, smtpAuthority?: string) => ({
    name: `Office 365 ${Math.random().toString(36).slice(2, 8)}`,
    enabled: false,
    imap: {
      host: '127.0.0.1',
      port: 993,
      user: `u${Math.random().toString(36).slice(2, 8)}@contoso.test`,
      auth: deviceCodeAuth(authorityHost),
    },
    smtp: smtpAuthority
      ? {
          host: '127.0.0.1',
          port: 587,
          auth: { mode: 'custom', method: 'oauth2', user: 'x@contoso.test', authorityHost: smtpAuthority },
        }
      : { host: '127.0.0.1', port: 587, auth: { mode: 'imap' } },
  });

  it('refuses an authority host on a loopback, private or metadata address, naming the field', async () => {
    const api = await openApiHarness('pglite', FAST_INBOUND, {}, {}, undefined, {
      authorityAddresses: AddressPolicy.strict(),
    });
    h = api;
    const tenantId = (await api.call<Obj>('POST', '/api/v1/tenants', { name: 'T' })).body.id as string;
    const url = `/api/v1/tenants/${tenantId}/servers`;
    for (const authority of [
      'https://127.0.0.1:8443',
      'https://10.1.2.3',
      'https://169.254.169.254',
      'https://[::1]',
    ]) {
      const res = await api.call<Obj>('POST', url, serverBody(authority));
      assert.equal(res.status, 400, `${authority}: ${res.raw}`);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      assert.equal(res.body.error.field, 'imap.auth.authorityHost');
      assert.match(res.body.error.message, /MAILROOM_OAUTH_ALLOW_PRIVATE/);
    }
    const smtp = await api.call<Obj>('POST', url, serverBody('https://203.0.113.9', 'https://192.168.1.1'));
    assert.equal(smtp.status, 400, smtp.raw);
    assert.equal(smtp.body.error.field, 'smtp.auth.authorityHost');
    const ok = await api.call<Obj>('POST', url, serverBody('https://203.0.113.9'));
    assert.equal(ok.status, 201, ok.raw);
    const patched = await api.call<Obj>('PATCH', `${url}/${ok.body.id}`, {
      imap: { auth: { method: 'oauth2', authorityHost: 'https://127.0.0.1:1' } },
    });
    assert.equal(patched.status, 400, patched.raw);
    assert.equal(patched.body.error.field, 'imap.auth.authorityHost');
  });

  it('refuses to connect to a stored authority host the policy does not allow (DNS rebinding, a policy tightened since)', async () => {
    h = await openApiHarness(
      'pglite',
      FAST_INBOUND,
      {},
      {},
      { identityProviderCa: idp.ca, identityProviderAddresses: AddressPolicy.strict() },
      { authorityAddresses: AddressPolicy.allowPrivate() },
    );
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'T' })).body.id as string;
    const created = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, serverBody(idp.url));
    assert.equal(created.status, 201, created.raw);
    const code = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers/${created.body.id}/oauth/device-code`, {
      purpose: 'imap',
    });
    assert.equal(code.status, 502, code.raw);
    assert.equal(code.body.error.code, 'OAUTH_FAILED');
    assert.equal(idp.tokenRequests.length, 0);
    assert.equal(idp.pendingCodes().length, 0, 'the identity provider was never asked');
  });
});
