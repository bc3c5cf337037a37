import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { makeTestCertificates } from '../../src/harness/fake-idp/certificates.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { loopbackImap } from '../support/fixtures.js';
import { eventually } from '../support/mail.js';
import { postfixMissing, startPostfix, type PostfixInstance } from '../support/postfix.js';
import { skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * Issue 30: replies through a real Postfix 3.7 (Debian's package, unpacked) on its submission
 * port, as an on-premises administrator runs it: STARTTLS required with a certificate of the
 * company's own CA, then SASL login; Postfix relays to a loopback smtp-server where the reply is
 * read as the customer's server would get it.
 */
describe('interop: Postfix submission (STARTTLS with a private CA, SASL login)', function () {
  this.timeout(180_000);
  const certificates = makeTestCertificates();
  let sink: SmtpHarness;
  let postfix: PostfixInstance;
  let caDir: string;
  let h: ApiHarness;

  before(async function () {
    skipWithout(this, postfixMissing());
    sink = await startSmtpHarness();
    postfix = await startPostfix({
      relayPort: sink.port,
      users: [{ user: 'relay', password: 'relay-pass' }],
      tls: { cert: certificates.cert, key: certificates.key },
    });
    caDir = await mkdtemp(join(tmpdir(), 'mailroom-postfix-ca-'));
    await writeFile(join(caDir, 'company-ca.pem'), certificates.ca);
    h = await openApiHarness('pglite', undefined, { probeIntervalMs: 500 }, {}, undefined, { caDir });
  });

  after(async () => {
    await h?.close();
    await postfix?.close();
    await sink?.close();
    if (caDir) await rm(caDir, { recursive: true, force: true });
  });

  it('pauses on the private certificate until smtp.caFile names the CA, then delivers the reply', async () => {
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'On premises' })).body.id as string;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Postfix',
      enabled: false,
      imap: loopbackImap(1, 'support@helpdesk.example.org', 'x'),
      smtp: {
        host: postfix.host,
        port: postfix.submissionPort,
        tls: 'starttls-required',
        auth: { mode: 'custom', user: 'relay', password: 'relay-pass' },
      },
    });
    assert.equal(server.status, 201, server.raw);
    const base = `/api/v1/tenants/${tenantId}/servers/${server.body.id}`;
    const refused = await h.call<Obj>('POST', `${base}/test`, {});
    assert.equal(refused.body.smtp.ok, false, refused.raw);
    assert.match(refused.body.smtp.detail, /certificate is not trusted.*'smtp\.caFile'/);

    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Help desk',
      address: 'support@helpdesk.example.org',
      fromText: 'Service – Kundendienst',
      serverId: server.body.id,
      monitored: false,
    });
    assert.equal(destination.status, 201, destination.raw);
    await h.outbound.start();
    const accepted = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/outbound`,
      { to: ['kunde@customer.example'], subject: 'Ihre Anfrage: Größe', text: 'Grüße aus dem Kundendienst' },
    );
    assert.equal(accepted.status, 202, accepted.raw);
    await eventually(async () =>
      (await h.call<Obj>('GET', `${base}/status`)).body.outbound.queue?.state === 'paused' ? true : undefined,
    );
    assert.equal(sink.messages.length, 0);

    const patched = await h.call<Obj>('PATCH', base, {
      smtp: {
        caFile: join(caDir, 'company-ca.pem'),
        // A new CA file is a new transport security: the stored password is given again (#24).
        auth: { mode: 'custom', user: 'relay', password: 'relay-pass' },
      },
    });
    assert.equal(patched.status, 200, patched.raw);
    const tested = await h.call<Obj>('POST', `${base}/test`, {});
    assert.equal(tested.body.smtp.ok, true, tested.raw);
    assert.match(tested.body.smtp.detail, /logged in as relay/);

    const [relayed] = await sink.waitFor(1, 60_000);
    assert.deepEqual(relayed?.envelope.to, ['kunde@customer.example']);
    const parsed = await simpleParser(relayed?.raw as Buffer);
    assert.equal(parsed.from?.value[0]?.name, 'Service – Kundendienst');
    assert.equal(parsed.from?.value[0]?.address, 'support@helpdesk.example.org');
    assert.equal(parsed.subject, 'Ihre Anfrage: Größe');
    assert.equal(parsed.text?.trim(), 'Grüße aus dem Kundendienst');
    assert.equal(parsed.messageId, `<mailroom.${accepted.body.id}@helpdesk.example.org>`);
    // Postfix says the submission was encrypted and logged in.
    const received = String(parsed.headers.get('received') ?? '');
    assert.match(received, /ESMTPSA/, received);

    const status = (await h.call<Obj>('GET', `${base}/status`)).body.outbound.queue;
    assert.equal(status.state, 'ok');
    assert.equal(status.resumeAt, null);
    await eventually(async () => {
      const sent = await h.call<Obj>(
        'GET',
        `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/outbound/${accepted.body.id}`,
      );
      return sent.body.status === 'sent' ? true : undefined;
    });
    const queued = await readdir(join(h.spoolDir, 'queue'), { recursive: true, withFileTypes: true });
    assert.deepEqual(
      queued.filter((e) => e.isFile()).map((e) => e.name),
      [],
      'the spool queue is empty',
    );
    assert.equal((await h.call<Obj>('GET', `${base}/status`)).body.outbound.queue.depth, 0);
    const log = await postfix.readLog();
    assert.match(log, /sasl_method=PLAIN, sasl_username=relay/);
  });
});
