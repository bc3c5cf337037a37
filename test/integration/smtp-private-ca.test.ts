import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCertificates } from '../../src/harness/fake-idp/certificates.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { loopbackImap } from '../support/fixtures.js';
import { eventually } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * Issue 30, item 1: a relay whose certificate comes from the company's own CA (STARTTLS on a
 * submission port, as Postfix on 587). The SMTP side trusts `smtp.caFile` (a file in
 * MAILROOM_CA_DIR), as the IMAP side trusts `imap.caFile`; without it the certificate is refused
 * and "Test connection" says which setting to fill in.
 */
describe('SMTP relay with a private CA (smtp.caFile) [pglite]', function () {
  this.timeout(60_000);
  let h: ApiHarness;
  let smtp: SmtpHarness;
  let caDir: string;
  let tenantId: string;

  beforeEach(async () => {
    caDir = await mkdtemp(join(tmpdir(), 'mailroom-smtp-ca-'));
    const certificates = makeTestCertificates();
    await writeFile(join(caDir, 'company-ca.pem'), certificates.ca);
    await writeFile(join(caDir, 'bogus.pem'), 'not a certificate\n');
    // STARTTLS (not implicit TLS) with the private certificate, and a login, as on port 587.
    smtp = await startSmtpHarness({
      tls: { key: certificates.key, cert: certificates.cert },
      users: [{ user: 'relay@example.com', password: 'relay-pass' }],
    });
    h = await openApiHarness('pglite', undefined, {}, {}, undefined, { caDir });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Company' })).body.id;
  });
  afterEach(async () => {
    await h.close();
    await smtp.close();
    await rm(caDir, { recursive: true, force: true });
  });

  async function createServer(caFile?: string | null): Promise<{ status: number; body: Obj; raw: string }> {
    return h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'On premises',
      enabled: false,
      imap: loopbackImap(1, 'support@example.com', 'imap-pass'),
      smtp: {
        host: '127.0.0.1',
        port: smtp.port,
        auth: { mode: 'custom', user: 'relay@example.com', password: 'relay-pass' },
        ...(caFile !== undefined && { caFile }),
      },
    });
  }

  it('refuses the certificate without the CA, says to fill in smtp.caFile, and sends once it is set', async () => {
    for (const path of [join(caDir, 'bogus.pem'), join(caDir, 'missing.pem'), '/etc/passwd']) {
      const res = await createServer(path);
      assert.equal(res.status, 400, res.raw);
      assert.equal(res.body.error.field, 'smtp.caFile', res.raw);
      assert.match(res.body.error.message, /MAILROOM_CA_DIR/);
    }

    const created = await createServer();
    assert.equal(created.status, 201, created.raw);
    const serverId = created.body.id as string;
    assert.equal(created.body.smtp.caFile, null);
    const base = `/api/v1/tenants/${tenantId}/servers/${serverId}`;

    const untrusted = await h.call<Obj>('POST', `${base}/test`, {});
    assert.equal(untrusted.body.smtp.ok, false, untrusted.raw);
    assert.match(untrusted.body.smtp.detail, /certificate is not trusted/);
    assert.match(untrusted.body.smtp.detail, /'smtp\.caFile'.*MAILROOM_CA_DIR/);

    // The queue pauses on the untrusted certificate: nothing reaches the relay.
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId,
      monitored: false,
    });
    assert.equal(destination.status, 201, destination.raw);
    await h.outbound.start();
    const sent = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/outbound`, {
      to: ['customer@example.net'],
      subject: 'Your ticket',
      text: 'Hello',
    });
    assert.equal(sent.status, 202, sent.raw);
    const paused = await eventually(async () => {
      const queue = (await h.call<Obj>('GET', `${base}/status`)).body.outbound.queue;
      return queue?.state === 'paused' ? queue : undefined;
    });
    assert.match(String(paused.lastReply), /self.signed|certificate|issuer/i);
    assert.equal(smtp.messages.length, 0);

    const caFile = join(caDir, 'company-ca.pem');
    // A new CA file is a new transport security: the stored relay password must be given again (#24).
    const keepOnly = await h.call<Obj>('PATCH', base, { smtp: { caFile } });
    assert.equal(keepOnly.status, 400, keepOnly.raw);
    assert.equal(keepOnly.body.error.field, 'smtp.auth.password');
    const patched = await h.call<Obj>('PATCH', base, {
      smtp: { caFile, auth: { mode: 'custom', user: 'relay@example.com', password: 'relay-pass' } },
    });
    assert.equal(patched.status, 200, patched.raw);
    assert.equal(patched.body.smtp.caFile, caFile);
    assert.equal(patched.body.smtp.auth.hasPassword, true);

    const trusted = await h.call<Obj>('POST', `${base}/test`, {});
    assert.equal(trusted.body.smtp.ok, true, trusted.raw);
    assert.match(
      trusted.body.smtp.detail,
      /logged in as relay@example\.com$/,
      'over STARTTLS: nothing said of clear text',
    );

    const [message] = await smtp.waitFor(1, 20_000);
    assert.equal(message?.secure, true, 'sent over STARTTLS');
    assert.match(message?.raw.toString('utf8') ?? '', /^Subject: Your ticket$/m);
  });
});
