import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { queuedRow } from '../../src/store/rows.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { routedMessageRow } from '../support/routed-messages.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** A mail with a text body and one attachment, as received. */
const RAW = [
  'From: Customer <customer@example.net>',
  'To: nobody@example.com',
  'Subject: Where is my refund?',
  'Message-ID: <refund.1@example.net>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b"',
  '',
  '--b',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'See the receipt.',
  '--b',
  'Content-Type: text/plain; name="receipt.txt"',
  'Content-Disposition: attachment; filename="receipt.txt"',
  '',
  'Receipt 42',
  '--b--',
  '',
].join('\r\n');

forEachBackend('a tenant’s message by id (the console’s message page)', (kind) => {
  let h: ApiHarness;
  beforeEach(async function () {
    this.timeout(120_000); // the first opens the embedded database
    h = await openApiHarness(kind);
  });
  afterEach(() => h.close());

  /** A tenant, its token, a server (not watched) and a destination; one unrouted message with its source. */
  async function tenantWithHeldMail(name: string): Promise<Obj> {
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name })).body.id as string;
    const token = (await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/tokens`, { name: `${name} desk` })).body
      .token as string;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Main',
      enabled: false,
      imap: { host: '127.0.0.1', port: 1, user: `${name}@example.com`, auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    });
    assert.equal(server.status, 201, server.raw);
    const serverId = server.body.id as string;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: `${name}@example.com`,
      serverId,
    });
    const destinationId = destination.body.id as string;
    const messageId = randomUUID();
    await h.store.transaction(async (tx) => {
      await tx.messages.insertBatch([
        {
          row: {
            ...routedMessageRow({ tenantId, serverId, destinationId }, 1),
            id: messageId,
            status: 'unrouted',
            subject: 'Where is my refund?',
            bodyText: 'See the receipt.',
            attachments: [
              {
                index: 0,
                filename: 'receipt.txt',
                contentType: 'text/plain',
                size: 10,
                contentId: null,
                checksum: 'x',
                inline: false,
              },
            ],
          },
          raw: Buffer.from(RAW),
          trace: { type: 'unrouted', detail: null },
        },
      ]);
    });
    return { tenantId, token, serverId, destinationId, messageId };
  }

  it('answers a held message (no destination) to its tenant, with its attachment as a download', async () => {
    const a = await tenantWithHeldMail('alpha');
    const base = `/api/v1/tenants/${a.tenantId}/messages/${a.messageId}`;
    const message = await h.call<Obj>('GET', base, undefined, a.token);
    assert.equal(message.status, 200, message.raw);
    assert.equal(message.body.status, 'unrouted');
    assert.equal(message.body.subject, 'Where is my refund?');
    assert.equal(message.body.attachments[0].filename, 'receipt.txt');
    // Through the destination it is not reachable: it was never delivered there.
    const viaDestination = await h.call<Obj>(
      'GET',
      `/api/v1/tenants/${a.tenantId}/destinations/${a.destinationId}/messages/${a.messageId}`,
      undefined,
      a.token,
    );
    assert.equal(viaDestination.status, 404);

    const part = await h.app.inject({
      method: 'GET',
      url: `${base}/attachments/0`,
      headers: { authorization: `Bearer ${a.token}` },
    });
    assert.equal(part.statusCode, 200, part.body);
    assert.equal(part.body.trim(), 'Receipt 42');
    assert.match(
      String(part.headers['content-disposition']),
      /^attachment; filename="receipt\.txt"; filename\*=UTF-8''receipt\.txt$/,
    );
    assert.match(String(part.headers['content-security-policy']), /sandbox/);
    assert.equal(part.headers['x-content-type-options'], 'nosniff');
    const missing = await h.call<Obj>('GET', `${base}/attachments/1`, undefined, a.token);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'MESSAGE_NOT_FOUND');
  });

  it("never answers another tenant's message, by its tenant's path or by its own", async () => {
    const a = await tenantWithHeldMail('alpha');
    const b = await tenantWithHeldMail('beta');
    for (const url of [
      `/api/v1/tenants/${a.tenantId}/messages/${a.messageId}`,
      `/api/v1/tenants/${b.tenantId}/messages/${a.messageId}`,
      `/api/v1/tenants/${b.tenantId}/messages/${a.messageId}/attachments/0`,
    ]) {
      const res = await h.call<Obj>('GET', url, undefined, b.token);
      assert.equal(res.status, 404, `${url}: ${res.raw}`);
      assert.ok(!res.raw.includes('refund'), res.raw);
      assert.ok(!res.raw.includes('Receipt 42'), res.raw);
    }
    const own = await h.call<Obj>('GET', `/api/v1/tenants/${b.tenantId}/messages/${b.messageId}`, undefined, b.token);
    assert.equal(own.status, 200, own.raw);
  });

  it('searches the trace for inbound or outbound mail only (kind)', async () => {
    const a = await tenantWithHeldMail('alpha');
    await h.store.outbound.insert(
      queuedRow({
        id: randomUUID(),
        tenantId: a.tenantId,
        destinationId: a.destinationId,
        serverId: a.serverId,
        messageIdHeader: 'reply.1@example.com',
        conversationId: null,
        subject: 'Your refund',
        recipients: ['customer@example.net'],
        instanceId: 'engine-a',
      }),
    );
    const search = (query: string) => h.call<Obj>('GET', `/api/v1/tenants/${a.tenantId}/trace?${query}`);
    const kinds = async (query: string) => (await search(query)).body.messages.map((m: Obj) => m.kind).sort();
    assert.deepEqual(await kinds(''), ['inbound', 'outbound']);
    assert.deepEqual(await kinds('kind=inbound'), ['inbound']);
    assert.deepEqual(await kinds(`kind=outbound&destinationId=${a.destinationId}`), ['outbound']);
    const bad = await search('kind=sideways');
    assert.equal(bad.status, 400, bad.raw);
    assert.equal(bad.body.error.field, 'kind');
  });
});
