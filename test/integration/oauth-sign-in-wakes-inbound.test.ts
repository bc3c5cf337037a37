import assert from 'node:assert/strict';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { deviceCodeAuth } from '../support/fixtures.js';
import { eventually, rawMail } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const USER = 'support@contoso.test';
const APP = 'daemon-app';
const SECRET = 'daemon-secret';
/** Retry delays far beyond the test's patience: only a wake-up lets the watcher in in time. */
const SLOW_RETRIES = {
  ...FAST_INBOUND,
  reconnectMinMs: 600_000,
  reconnectMaxMs: 600_000,
  authRetryMinMs: 600_000,
  authRetryMaxMs: 600_000,
};

describe('a completed OAuth 2.0 sign-in wakes the inbound watcher waiting out its retry delay', function () {
  this.timeout(60_000);
  let h: ApiHarness;
  let idp: FakeIdp;
  let imap: FakeImapServer;
  let tenantId: string;

  beforeEach(async () => {
    idp = await startFakeIdp({ pollIntervalSeconds: 1 });
    h = await openApiHarness('pglite', SLOW_RETRIES, {}, {}, { identityProviderCa: idp.ca });
    imap = await startFakeImap({ users: [{ user: USER }], verifyAccessToken: idp.verifyAccessToken });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'OAuth' })).body.id;
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stdout.write(`${h.logLines.slice(-30).join('\n')}\n`);
    await h.close();
    await imap.close();
    await idp.close();
  });

  /** A server watching USER's mailbox, a destination for it, and a message waiting there. */
  async function watched(auth: Record<string, unknown>): Promise<{ serverId: string; messages: () => Promise<Obj[]> }> {
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Office 365',
      imap: { host: '127.0.0.1', port: imap.port, secure: false, user: USER, auth },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'imap' } },
    });
    assert.equal(server.status, 201, server.raw);
    const serverId = server.body.id as string;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: USER,
      serverId,
    });
    assert.equal(destination.status, 201, destination.raw);
    imap.append(USER, 'INBOX', rawMail({ to: USER, subject: 'waiting for a sign-in' }));
    await h.inbound.start();
    await eventually(async () => (h.inbound.status(serverId).nextAttemptAt !== null ? true : undefined));
    const url = `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/messages`;
    return { serverId, messages: async () => (await h.call<Obj>('GET', url)).body.messages as Obj[] };
  }

  it('after a device-code sign-in', async () => {
    const { serverId, messages } = await watched(deviceCodeAuth(idp.url));
    assert.equal(h.inbound.status(serverId).state, 'authError');
    const code = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth/device-code`, {
      purpose: 'imap',
    });
    assert.equal(code.status, 200, code.raw);
    assert.ok(idp.approve(code.body.userCode, USER));
    const routed = await eventually(async () => ((await messages()).length > 0 ? await messages() : undefined), 20_000);
    assert.equal(routed[0]?.subject, 'waiting for a sign-in');
  });

  it('after the client-credentials flow gets a token on request (OAuth test)', async () => {
    const { serverId, messages } = await watched(
      deviceCodeAuth(idp.url, { clientId: APP, flow: 'client-credentials', clientSecret: SECRET }),
    );
    // The administrator registers the app with the identity provider, then tests the sign-in.
    idp.addApp({ clientId: APP, clientSecret: SECRET, mailboxes: [USER] });
    const test = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth/test`, {
      purpose: 'imap',
    });
    assert.equal(test.status, 200, test.raw);
    assert.equal(test.body.status, 'COMPLETE', test.raw);
    const routed = await eventually(async () => ((await messages()).length > 0 ? await messages() : undefined), 20_000);
    assert.equal(routed[0]?.subject, 'waiting for a sign-in');
  });
});
