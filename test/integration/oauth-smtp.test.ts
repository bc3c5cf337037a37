import assert from 'node:assert/strict';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { metricsRegistry } from '../../src/shared/metrics.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { eventually } from '../support/mail.js';
import { deviceCodeAuth } from '../support/fixtures.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const USER_A = 'support@contoso.test';
const USER_B = 'sales@contoso.test';

/** The value of a counter for these labels, from the engine's registry. */
async function counterValue(name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metricsRegistry.getMetricsAsJSON()).find((m) => m.name === name);
  const match = (metric?.values ?? []).find((v) =>
    Object.entries(labels).every(([k, value]) => (v.labels as Record<string, unknown>)[k] === value),
  );
  return match?.value ?? 0;
}

/**
 * SMTP XOAUTH2 through the spool, end to end: device-code sign-ins at the fake identity provider,
 * an SMTP harness that accepts only the tokens that provider issued and still honours, a token
 * refused mid-session (one forced refresh, then sent), a revoked grant (REAUTH_REQUIRED: that
 * account's mail waits in the spool while a second OAuth account and a password account carry
 * on), and a new sign-in after which the waiting mail goes out in order.
 */
forEachBackend('OAuth 2.0 on SMTP through the spool', (kind) => {
  let h: ApiHarness;
  let idp: FakeIdp;
  let smtp: SmtpHarness;
  let tenantId: string;

  beforeEach(async () => {
    idp = await startFakeIdp({ pollIntervalSeconds: 1 });
    // authRetryMs is long: a held queue must be released by the sign-in itself, not by its next probe.
    h = await openApiHarness(kind, undefined, { authRetryMs: 60_000 }, {}, { identityProviderCa: idp.ca });
    smtp = await startSmtpHarness({
      users: [{ user: 'relay', password: 'relay-pass' }],
      verifyAccessToken: idp.verifyAccessToken,
    });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'OAuth SMTP' })).body.id;
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-40).join('\n')}\n`);
    }
    await h.close();
    await smtp.close();
    await idp.close();
  });

  async function account(name: string, user: string, oauth: boolean): Promise<{ serverId: string; destId: string }> {
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name,
      enabled: false, // no IMAP watcher: this test is about sending
      imap: {
        host: '127.0.0.1',
        port: 1,
        secure: false,
        user,
        auth: oauth ? deviceCodeAuth(idp.url) : { method: 'password', password: 'x' },
      },
      smtp: {
        host: '127.0.0.1',
        port: smtp.port,
        auth: oauth ? { mode: 'imap' } : { mode: 'custom', user: 'relay', password: 'relay-pass' },
      },
    });
    assert.equal(server.status, 201, server.raw);
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name,
      address: user,
      serverId: server.body.id,
    });
    assert.equal(destination.status, 201, destination.raw);
    return { serverId: server.body.id, destId: destination.body.id };
  }

  async function signIn(serverId: string, user: string): Promise<void> {
    const url = `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth`;
    const code = await h.call<Obj>('POST', `${url}/device-code`, { purpose: 'smtp' });
    assert.equal(code.status, 200, code.raw);
    assert.ok(idp.approve(code.body.userCode, user));
    await eventually(async () => ((await h.call<Obj>('GET', url)).body.smtp.status === 'COMPLETE' ? true : undefined));
  }

  async function send(destId: string, subject: string): Promise<string> {
    const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${destId}/outbound`, {
      to: ['customer@example.net'],
      subject,
      text: subject,
    });
    assert.equal(res.status, 202, res.raw);
    return res.body.id as string;
  }

  async function statusOf(destId: string, id: string): Promise<string> {
    return (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destId}/outbound/${id}`)).body.status;
  }

  const subjectsOf = (user: string): string[] =>
    smtp.messages
      .filter((m) => m.user === user)
      .map((m) => m.raw.toString('utf8').match(/^Subject: (.*)$/m)?.[1] ?? '');

  it('refreshes a refused token once, holds a revoked account in the spool, and sends after a new sign-in', async function () {
    this.timeout(60_000);
    const a = await account('Office A', USER_A, true);
    const b = await account('Office B', USER_B, true);
    const c = await account('Password', 'password@example.com', false);
    await signIn(a.serverId, USER_A);
    await signIn(b.serverId, USER_B);
    await h.outbound.start();

    // 1. XOAUTH2 with the provider's token.
    await send(a.destId, 'A first');
    await smtp.waitFor(1, 10_000);
    assert.deepEqual(subjectsOf(USER_A), ['A first']);

    // 2. The token expires at the provider while the pooled connection idles; the connection is cut.
    //    The next login is refused (535), the engine forces one refresh and sends.
    idp.expireAccessTokens();
    await smtp.dropConnections();
    const refreshesBefore = idp.tokenRequests.filter((r) => r.grantType === 'refresh_token').length;
    const refused = smtp.authentications.filter((x) => !x.accepted).length;
    await send(a.destId, 'A after expiry');
    await smtp.waitFor(2, 10_000);
    assert.deepEqual(subjectsOf(USER_A), ['A first', 'A after expiry']);
    // nodemailer presents the token it was given twice before giving up (its own retry has nothing new).
    assert.ok(smtp.authentications.filter((x) => !x.accepted).length > refused, 'the expired token was refused');
    assert.equal(smtp.authentications.at(-1)?.accepted, true, 'then the refreshed one was accepted');
    assert.equal(
      idp.tokenRequests.filter((r) => r.grantType === 'refresh_token' && !r.error).length,
      refreshesBefore + 1,
      'one forced refresh',
    );

    // 3. The grant is revoked (password changed): the refresh answers invalid_grant.
    idp.revoke(USER_A);
    await smtp.dropConnections();
    const reauthBefore = await counterValue('mailroom_oauth_reauth_required_total', {
      tenant_id: tenantId,
      server_id: a.serverId,
      purpose: 'imap',
    });
    const waiting = [
      await send(a.destId, 'A wait 1'),
      await send(a.destId, 'A wait 2'),
      await send(a.destId, 'A wait 3'),
    ];
    const status = await eventually(async () => {
      const s = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${a.serverId}/status`);
      return s.body.outbound.queue?.state === 'held' ? s.body.outbound.queue : undefined;
    });
    assert.match(status.lastReply, /sign/i);
    const oauth = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${a.serverId}/oauth`);
    assert.equal(oauth.body.smtp.status, 'REAUTH_REQUIRED');
    assert.match(oauth.body.smtp.error, /sign in again/);
    assert.equal(
      await counterValue('mailroom_oauth_reauth_required_total', {
        tenant_id: tenantId,
        server_id: a.serverId,
        purpose: 'imap',
      }),
      reauthBefore + 1,
      'the metric counts the change once',
    );
    const line = h.logLines
      .map((l) => JSON.parse(l) as Obj)
      .find((l) => l.event === 'oauth-reauth-required' && l.serverId === a.serverId);
    assert.ok(line, 'an error line tells the operator');
    assert.ok(line.level >= 40 && line.tenantId === tenantId, JSON.stringify(line));

    // Other accounts carry on while A waits.
    await send(b.destId, 'B during');
    await send(c.destId, 'C during');
    await eventually(async () =>
      subjectsOf(USER_B).includes('B during') && subjectsOf('relay').includes('C during') ? true : undefined,
    );
    for (const id of waiting) assert.ok(['queued', 'deferred'].includes(await statusOf(a.destId, id)));
    assert.deepEqual(await h.outbound.deadLetters(tenantId, a.serverId), [], 'nothing dead-lettered');
    assert.equal((await h.outbound.spool.list(a.serverId)).length, 3, 'all three wait in the spool');
    assert.deepEqual(subjectsOf(USER_A), ['A first', 'A after expiry']);

    // 4. Someone signs in again: the waiting mail goes out at once (not at the next probe), in order.
    await signIn(a.serverId, USER_A);
    await eventually(async () => (subjectsOf(USER_A).length === 5 ? true : undefined), 10_000);
    assert.deepEqual(subjectsOf(USER_A), ['A first', 'A after expiry', 'A wait 1', 'A wait 2', 'A wait 3']);
    for (const id of waiting) {
      await eventually(async () => ((await statusOf(a.destId, id)) === 'sent' ? true : undefined));
    }
    await eventually(async () => ((await h.outbound.spool.list(a.serverId)).length === 0 ? true : undefined));
    assert.equal(h.outbound.status(a.serverId).queue?.state, 'ok');
  });
});
