import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { eventually } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const MAILBOX = 'shared@contoso.test';
const APP_CLIENT_ID = 'mailroom-sender-app';
const SECRET = `cc-canary-${randomBytes(6).toString('hex')}`;

/**
 * SMTP XOAUTH2 with an app registration (client credentials): the engine gets an app-only token
 * with the sealed client secret, and the SMTP harness checks it at the fake identity provider.
 * A wrong secret holds the account (nothing dead-lettered, the mail waits in the spool) and says
 * so in plain words; correcting the secret with a PATCH sends the waiting mail.
 */
forEachBackend('OAuth 2.0 client credentials on SMTP through the spool', (kind) => {
  let h: ApiHarness;
  let idp: FakeIdp;
  let smtp: SmtpHarness;
  let tenantId: string;
  /** Whom each token presented over XOAUTH2 belongs to, at the provider (`app:<clientId>` for app-only). */
  let presented: Array<string | undefined>;

  beforeEach(async () => {
    idp = await startFakeIdp({ apps: [{ clientId: APP_CLIENT_ID, clientSecret: SECRET, mailboxes: [MAILBOX] }] });
    // authRetryMs is long: the held queue must be released by the corrected settings, not by a probe.
    h = await openApiHarness(kind, undefined, { authRetryMs: 60_000 }, {}, { identityProviderCa: idp.ca });
    presented = [];
    smtp = await startSmtpHarness({
      verifyAccessToken: (user, token) => {
        presented.push(idp.isValidAccessToken(token));
        return idp.verifyAccessToken(user, token);
      },
    });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Client credentials' })).body.id;
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-40).join('\n')}\n`);
    }
    await h.close();
    await smtp.close();
    await idp.close();
  });

  it('holds the account while the client secret is wrong, and sends once it is corrected', async function () {
    this.timeout(60_000);
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'App sender',
      enabled: false, // no IMAP watcher: this test is about sending
      imap: { host: '127.0.0.1', port: 1, secure: false, user: MAILBOX, auth: { method: 'password', password: 'x' } },
      smtp: {
        host: '127.0.0.1',
        port: smtp.port,
        auth: {
          mode: 'custom',
          method: 'oauth2',
          user: MAILBOX,
          flow: 'client-credentials',
          clientId: APP_CLIENT_ID,
          directoryId: 'contoso-directory',
          authorityHost: idp.url,
          clientSecret: 'the-secret-id-not-its-value',
        },
      },
    });
    assert.equal(server.status, 201, server.raw);
    const serverId: string = server.body.id;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Shared',
      address: MAILBOX,
      serverId,
    });
    assert.equal(destination.status, 201, destination.raw);
    const outboundUrl = `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/outbound`;
    await h.outbound.start();

    // 1. Wrong secret: the account is held, the mail stays queued, the status says why.
    const ids: string[] = [];
    for (const subject of ['first', 'second']) {
      const res = await h.call<Obj>('POST', outboundUrl, { to: ['customer@example.net'], subject, text: subject });
      assert.equal(res.status, 202, res.raw);
      ids.push(res.body.id);
    }
    const queue = await eventually(async () => {
      const s = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`);
      return s.body.outbound.queue?.state === 'held' ? (s.body.outbound.queue as Obj) : undefined;
    });
    assert.match(queue.lastReply, /client secret is wrong/);
    const oauth = (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth`)).body;
    assert.equal(oauth.smtp.status, 'ERROR');
    assert.equal(oauth.smtp.flow, 'client-credentials');
    assert.match(oauth.smtp.error, /client secret is wrong \(AADSTS7000215\)/);
    assert.ok(
      idp.tokenRequests.some((r) => r.grantType === 'client_credentials' && r.error === 'invalid_client'),
      'the provider refused the secret',
    );
    assert.deepEqual(smtp.messages, [], 'nothing reached the relay');
    assert.deepEqual(await h.outbound.deadLetters(tenantId, serverId), [], 'nothing dead-lettered');
    assert.equal((await h.outbound.spool.list(serverId)).length, 2, 'both wait in the spool');
    for (const id of ids) {
      const status = (await h.call<Obj>('GET', `${outboundUrl}/${id}`)).body.status;
      assert.ok(['queued', 'deferred'].includes(status), status);
    }

    // 2. The administrator pastes the right secret: the held queue sends, in order, with an app-only token.
    const patched = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/servers/${serverId}`, {
      smtp: { auth: { mode: 'custom', clientSecret: SECRET } },
    });
    assert.equal(patched.status, 200, patched.raw);
    assert.ok(!patched.raw.includes(SECRET), 'the secret is not shown back');
    const received = await smtp.waitFor(2, 20_000);
    assert.deepEqual(
      received.map((m) => m.raw.toString('utf8').match(/^Subject: (.*)$/m)?.[1]),
      ['first', 'second'],
    );
    assert.ok(received.every((m) => m.user === MAILBOX));
    assert.ok(presented.length > 0 && presented.every((p) => p === `app:${APP_CLIENT_ID}`), String(presented));
    for (const id of ids) {
      await eventually(async () =>
        (await h.call<Obj>('GET', `${outboundUrl}/${id}`)).body.status === 'sent' ? true : undefined,
      );
    }
    assert.equal(h.outbound.status(serverId).queue?.state, 'ok');
    const after = (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth`)).body;
    assert.equal(after.smtp.status, 'COMPLETE');
    assert.equal(after.smtp.account, `app ${APP_CLIENT_ID}`);
    assert.equal(after.smtp.error, null);

    // Canary: the secret is never in the database, the logs or the API in clear.
    const dump =
      JSON.stringify(await h.store.query('SELECT * FROM email_servers')) +
      JSON.stringify(await h.store.query('SELECT * FROM oauth_grants'));
    const shown = (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}`)).raw;
    for (const secret of [SECRET, ...idp.issuedTokens]) {
      assert.ok(!dump.includes(secret), 'the database holds a secret in clear');
      assert.ok(!shown.includes(secret), 'the API shows a secret');
      assert.ok(!h.logLines.join('\n').includes(secret), 'the logs hold a secret');
    }
  });
});
