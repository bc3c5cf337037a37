import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { isPostgresReachable } from '../support/database.js';
import { startDovecot, type DovecotInstance } from '../support/dovecot.js';
import { eventually, rawMail } from '../support/mail.js';
import { dovecotMissing, skipWithout } from '../support/requirements.js';
import { deviceCodeAuth } from '../support/fixtures.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const USER = 'support@contoso.test';

/**
 * IMAP XOAUTH2 against a real server: Dovecot's oauth2 passdb checks every token by
 * introspection at the fake identity provider, so only tokens it issued and still honours open
 * the mailbox. A device-code sign-in through the API, then the engine ingests over OAuth.
 */
describe('OAuth 2.0 IMAP against Dovecot (oauth2 passdb, introspection at the fake provider)', function () {
  this.timeout(120_000);
  let idp: FakeIdp;
  let dovecot: DovecotInstance;
  let h: ApiHarness;

  before(async function () {
    skipWithout(this, dovecotMissing());
    idp = await startFakeIdp({ pollIntervalSeconds: 1, introspection: true });
    dovecot = await startDovecot({ oauth2IntrospectionUrl: idp.introspectionUrl });
    const kind = (await isPostgresReachable()) ? 'postgres' : 'pglite';
    h = await openApiHarness(kind, FAST_INBOUND, {}, {}, { identityProviderCa: idp.ca });
  });
  after(async () => {
    await h?.close();
    await dovecot?.close();
    await idp?.close();
  });

  it('refuses a token the provider did not issue, and ingests over XOAUTH2 after a device-code sign-in', async () => {
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Dovecot OAuth' })).body.id as string;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Dovecot',
      imap: {
        host: dovecot.host,
        port: dovecot.port,
        secure: false,
        user: USER,
        auth: deviceCodeAuth(idp.url),
      },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'imap' } },
    });
    assert.equal(server.status, 201, server.raw);
    const serverId = server.body.id as string;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: USER,
      serverId,
    });
    const oauthUrl = `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth`;
    const code = await h.call<Obj>('POST', `${oauthUrl}/device-code`, { purpose: 'imap' });
    assert.equal(code.status, 200, code.raw);
    assert.ok(idp.approve(code.body.userCode, USER));
    await eventually(async () =>
      (await h.call<Obj>('GET', oauthUrl)).body.imap.status === 'COMPLETE' ? true : undefined,
    );

    const login = async (accessToken: string): Promise<ImapFlow> => {
      const client = new ImapFlow({
        host: dovecot.host,
        port: dovecot.port,
        secure: false,
        auth: { user: USER, accessToken },
        logger: false,
      });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    };
    await assert.rejects(login('not-a-token-the-provider-issued'), 'Dovecot asks the provider and refuses');

    // A customer's message arrives (appended with the engine's own token: Dovecot accepts it).
    const row = await h.store.servers.get(tenantId, serverId);
    assert.ok(row && h.oauth);
    const { accessToken } = await h.oauth.accessToken(row, 'imap');
    const writer = await login(accessToken);
    await writer.append('INBOX', rawMail({ to: USER, subject: 'through dovecot oauth' }));
    await writer.logout();

    await h.inbound.start();
    const messages = await eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/messages`);
      return res.body.messages.length > 0 ? (res.body.messages as Obj[]) : undefined;
    }, 30_000);
    assert.equal(messages[0]?.subject, 'through dovecot oauth');
  });
});
