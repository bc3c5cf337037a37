import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { makeTestCertificates } from '../../src/harness/fake-idp/certificates.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { startCyrus, cyrusMissing, type CyrusInstance } from '../support/cyrus.js';
import { eventually, rawMail } from '../support/mail.js';
import { skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const ADDRESS = 'support@example.com';

/**
 * Issue 30: Mailroom against a real Cyrus IMAP 3.6 (Debian's packages, unpacked), as an
 * on-premises administrator runs it: STARTTLS with a certificate of the company's own CA, SASL
 * logins, the watched folder's mail moved away after it is stored, the folder recreated (a new
 * UIDVALIDITY) and the engine restarted.
 */
describe('interop: Cyrus IMAP (STARTTLS with a private CA, SASL login)', function () {
  this.timeout(180_000);
  const certificates = makeTestCertificates();
  let cyrus: CyrusInstance;
  let client: ImapFlow;
  let caDir: string;
  let caFile: string;
  let h: ApiHarness;
  let watched: string;
  let processed: string;

  before(async function () {
    skipWithout(this, cyrusMissing());
    cyrus = await startCyrus({
      users: [
        { user: 'support', password: 'support-pass' },
        { user: 'other', password: 'other-pass' },
      ],
      tls: { cert: certificates.cert, key: certificates.key },
    });
    caDir = await mkdtemp(join(tmpdir(), 'mailroom-cyrus-ca-'));
    caFile = join(caDir, 'company-ca.pem');
    await writeFile(caFile, certificates.ca);
    client = new ImapFlow({
      host: cyrus.host,
      port: cyrus.port,
      secure: false,
      doSTARTTLS: true,
      tls: { ca: [certificates.ca] },
      auth: { user: 'support', pass: 'support-pass' },
      logger: false,
    });
    await client.connect();
    // Cyrus names folders its way (altnamespace or INBOX.*): the paths it gives are used.
    watched = (await client.mailboxCreate('Support')).path;
    processed = (await client.mailboxCreate('Processed')).path;
    h = await openApiHarness('pglite', { ...FAST_INBOUND, mailboxes: [watched] }, {}, {}, undefined, { caDir });
  });

  after(async () => {
    await client?.logout().catch(() => undefined);
    await h?.close();
    await cyrus?.close();
    if (caDir) await rm(caDir, { recursive: true, force: true });
  });

  const message = (n: number): string =>
    rawMail({
      to: ADDRESS,
      // Encoded words in the header (Cyrus replaces raw 8-bit header bytes with X: its munge8bit).
      subject: n % 2 === 0 ? `=?UTF-8?Q?Frage_Nr._${n}:_Gr=C3=B6=C3=9Fe?=` : `question ${n}`,
      messageId: `cyrus-${n}@customer.example`,
      body: n % 2 === 0 ? `Grüße aus Köln, Nachricht ${n}` : `message ${n}`,
    });

  async function count(path: string): Promise<number> {
    const status = await client.status(path, { messages: true });
    return status ? (status.messages ?? -1) : -1;
  }

  async function uidValidity(path: string): Promise<bigint> {
    const status = await client.status(path, { uidValidity: true });
    assert.ok(status, `STATUS ${path} failed`);
    return BigInt(status.uidValidity ?? 0);
  }

  function imapSettings(user: string, password: string, extra: Obj = {}): Obj {
    return {
      host: cyrus.host,
      port: cyrus.port,
      tls: 'starttls-required',
      user,
      auth: { method: 'password', password },
      ...extra,
    };
  }

  it('needs the CA on the IMAP side, logs in with SASL over STARTTLS, routes once, moves, survives a new UIDVALIDITY', async () => {
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'On premises' })).body.id as string;
    const smtp = { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } };

    // Without the company's CA the certificate is refused, and Test connection says where to name it.
    const untrusted = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Untrusted',
      enabled: false,
      imap: imapSettings('other', 'other-pass'),
      smtp,
    });
    assert.equal(untrusted.status, 201, untrusted.raw);
    const refused = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers/${untrusted.body.id}/test`, {});
    assert.equal(refused.body.imap.ok, false, refused.raw);
    assert.match(refused.body.imap.detail, /certificate is not trusted.*'imap\.caFile'/);

    for (const n of [0, 1, 2, 3, 4]) await client.append(watched, message(n));
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Cyrus',
      imap: imapSettings('support', 'support-pass', { caFile }),
      smtp,
      postProcess: `move:${processed}`,
    });
    assert.equal(server.status, 201, server.raw);
    const serverId = server.body.id as string;
    const tested = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers/${serverId}/test`, {});
    assert.equal(tested.body.imap.ok, true, tested.raw);
    assert.match(tested.body.imap.detail, /logged in as support; new mail is announced \(IDLE\)/);
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: ADDRESS,
      serverId,
    });
    assert.equal(destination.status, 201, destination.raw);
    const feed = async (): Promise<Obj[]> =>
      (
        await h.call<Obj>(
          'GET',
          `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/messages?after=0&limit=100`,
        )
      ).body.messages as Obj[];

    await h.inbound.start();
    await eventually(async () => ((await feed()).length >= 5 ? true : undefined), 60_000);
    // Post-processing: every stored message moved out of the watched folder.
    await eventually(
      async () => ((await count(watched)) === 0 && (await count(processed)) === 5 ? true : undefined),
      30_000,
    );
    const status = (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`)).body;
    assert.equal(status.inbound.state, 'idle', JSON.stringify(status.inbound));
    assert.equal(status.inbound.newMail.by, 'idle');
    assert.deepEqual(status.tls, { imap: 'starttls-required', smtp: 'starttls-when-offered' });
    await h.inbound.service.stop();

    // The folder recreated (Cyrus gives it a new UIDVALIDITY), the same five mails and a new one in it.
    const before = await uidValidity(watched);
    await client.mailboxDelete(watched);
    await client.mailboxCreate(watched);
    for (const n of [0, 1, 2, 3, 4, 5]) await client.append(watched, message(n));
    const after = await uidValidity(watched);
    assert.notEqual(after, before, 'a new UIDVALIDITY');

    const restarted = h.restartInbound();
    try {
      await restarted.start();
      await eventually(async () => ((await feed()).length >= 6 ? true : undefined), 60_000);
      await eventually(async () => ((await count(watched)) === 0 ? true : undefined), 30_000);
      // A later message as a barrier: passes over a mailbox run one after another, so once it is
      // routed a wrong second copy would be in the feed before it (no pause needed to let one show).
      await client.append(watched, message(7));
      const routed = await eventually(async () => {
        const list = await feed();
        return list.length >= 7 ? list : undefined;
      }, 60_000);
      assert.deepEqual(
        routed.map((m) => m.subject),
        [0, 1, 2, 3, 4, 5, 7].map((n) => (n % 2 === 0 ? `Frage Nr. ${n}: Größe` : `question ${n}`)),
        'each routed once, in order; the copies after the reset are recognised',
      );
      const alerts = await h.store.alerts.listByServer(serverId);
      assert.deepEqual(
        alerts.map((a) => a.kind),
        ['uidvalidity-changed'],
      );
    } finally {
      await restarted.stop();
    }
  });
});
