import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { verifySignature } from '../../src/inbound/webhooks/signature.js';
import { createAccounts } from '../../src/accounts/index.js';
import { AddressPolicy } from '../../src/shared/address-policy.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { quietLogger } from '../support/database.js';
import { eventually, rawMail } from '../support/mail.js';
import { webhookFailures } from '../../src/shared/metrics.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const SECRET = 'canary-webhook-secret-7f3a9c1e';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
}

/** A real HTTP receiver on 127.0.0.1:0 that answers 500 `failures` times, then 200. */
async function startReceiver(
  failures: number,
): Promise<{ url: string; got: Received[]; server: Server; fail: (n: number) => void }> {
  const got: Received[] = [];
  let remaining = failures;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answered = remaining > 0 ? 500 : 200;
      if (remaining > 0) remaining -= 1;
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answered });
      res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered === 200 ? 'ok' : 'receiver down');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/mailroom`, got, server, fail: (n) => (remaining = n) };
}

forEachBackend('webhooks', (kind) => {
  let h: ApiHarness;
  let imap: FakeImapServer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let tenantId: string;
  let serverId: string;

  beforeEach(async () => {
    h = await openApiHarness(kind);
    imap = await startFakeImap({ users: [{ user: 'support@example.com', password: 'imap-pass' }] });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Hooks' })).body.id;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Main',
      imap: {
        host: '127.0.0.1',
        port: imap.port,
        secure: false,
        user: 'support@example.com',
        auth: { method: 'password', password: 'imap-pass' },
      },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    });
    assert.equal(server.status, 201, server.raw);
    serverId = server.body.id;
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-40).join('\n')}\n`);
    }
    await h.close();
    await imap.close();
    receiver?.server.close();
  });

  async function addDestination(body: Obj): Promise<Obj> {
    const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId,
      ...body,
    });
    assert.equal(res.status, 201, res.raw);
    return res.body;
  }

  const statusOf = async (destinationId: string): Promise<Obj> => {
    const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/webhook`);
    assert.equal(res.status, 200, res.raw);
    return res.body;
  };

  it('signs, retries through a receiver that fails three times, and delivers once it answers 2xx', async () => {
    receiver = await startReceiver(3);
    const destination = await addDestination({ webhookUrl: receiver.url, webhookSecret: SECRET });
    assert.equal(destination.webhookUrl, receiver.url);
    assert.equal(destination.hasWebhookSecret, true);
    await h.inbound.start();
    h.webhooks.start();
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'support@example.com', subject: 'hook me' }));

    await eventually(async () => (receiver.got.some((r) => r.answered === 200) ? true : undefined), 15_000);
    const status = await eventually(async () => {
      const s = await statusOf(destination.id);
      return s.pending === 0 && s.delivered === 1 ? s : undefined;
    });
    // A little longer: nothing more arrives once a 2xx was answered.
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.deepEqual(
      receiver.got.map((r) => r.answered),
      [500, 500, 500, 200],
    );
    const keys = new Set(receiver.got.map((r) => r.headers['idempotency-key']));
    assert.deepEqual([...keys], [`${destination.id}:1`]);
    const failures = (await webhookFailures.get()).values.find((v) => v.labels.destination_id === destination.id);
    assert.equal(failures?.value, 3, 'each failed POST is counted in the metrics');
    for (const r of receiver.got) {
      const ok = verifySignature({
        secret: SECRET,
        body: r.body,
        timestamp: r.headers['x-mailroom-timestamp'] as string,
        signature: r.headers['x-mailroom-signature'] as string,
        nowSeconds: Math.floor(Date.now() / 1000),
      });
      assert.equal(ok, true, 'signature verifies');
      assert.equal(r.headers['content-type'], 'application/json');
    }
    const event = JSON.parse((receiver.got[3] as Received).body) as Obj;
    assert.equal(event.type, 'message.routed');
    assert.equal(event.id, `${destination.id}:1`);
    assert.equal(event.seq, 1);
    assert.equal(event.tenantId, tenantId);
    assert.equal(event.destinationId, destination.id);
    assert.equal(event.message.subject, 'hook me');
    assert.equal(event.message.seq, 1);

    assert.equal(status.state, 'ok');
    assert.equal(status.head, null);
    // The status and its kind, never what the receiver answered.
    assert.equal(status.lastError, 'HTTP 500 (server error)');
    assert.ok(!JSON.stringify(status).includes('receiver down'), 'the receiver body is not shown');
    assert.equal(status.recentFailures.length, 1);
    assert.equal(status.recentFailures[0].attempts, 4);
    assert.equal(status.recentFailures[0].seq, 1);
    assert.notEqual(status.recentFailures[0].deliveredAt, null);
    // Delivered since: the failure still shows the status it failed with, not the later 200.
    assert.equal(status.recentFailures[0].status, 500);
    // The failure's log line names the tenant and the destination, not only their ids.
    const failureLine = h.logLines
      .map((l) => JSON.parse(l) as Obj)
      .find((l) => l.msg === 'webhook POST failed; will retry');
    assert.equal(failureLine?.tenantName, 'Hooks');
    assert.equal(failureLine?.destinationName, 'Support');
    const [row] = await h.store.query<{ attempts: number; last_status: number }>(
      'SELECT attempts, last_status FROM webhook_deliveries WHERE destination_id = $1',
      [destination.id],
    );
    assert.equal(row?.attempts, 4);
    assert.equal(row?.last_status, 200);

    // Canary: the secret never leaves sealed.
    const answers = [
      (await h.call('GET', `/api/v1/tenants/${tenantId}/destinations/${destination.id}`)).raw,
      (await h.call('GET', `/api/v1/tenants/${tenantId}/destinations`)).raw,
      JSON.stringify(status),
    ];
    for (const text of answers) assert.ok(!text.includes(SECRET), 'secret in an API answer');
    assert.ok(!h.logLines.join('\n').includes(SECRET), 'secret in the log');
    const dump = await h.store.query<{ t: string }>(
      `SELECT (SELECT string_agg(d::text, '|') FROM destinations d) || (SELECT string_agg(w::text, '|') FROM webhook_deliveries w) AS t`,
    );
    assert.ok(dump[0]?.t.length, 'dump is not empty');
    assert.ok(!dump[0]?.t.includes(SECRET), 'secret in the database in clear');
  });

  it('shows a receiver that keeps failing as failing, keeps the event, and delivers in order once it recovers', async () => {
    receiver = await startReceiver(1_000);
    const destination = await addDestination({ webhookUrl: receiver.url, webhookSecret: SECRET });
    await h.inbound.start();
    h.webhooks.start();
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'support@example.com', subject: 'first' }));
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'support@example.com', subject: 'second' }));
    const failing = await eventually(async () => {
      const s = await statusOf(destination.id);
      return s.state === 'failing' ? s : undefined;
    });
    assert.equal(failing.pending, 2);
    assert.equal(failing.head.seq, 1);
    // Strict order: nothing of seq 2 is posted while seq 1 is pending.
    assert.ok(receiver.got.every((r) => r.headers['idempotency-key'] === `${destination.id}:1`));
    receiver.fail(0);
    await eventually(async () => ((await statusOf(destination.id)).pending === 0 ? true : undefined), 10_000);
    const delivered = receiver.got.filter((r) => r.answered === 200).map((r) => (JSON.parse(r.body) as Obj).seq);
    assert.deepEqual(delivered, [1, 2]);
    assert.equal((await statusOf(destination.id)).state, 'ok');
  });

  it('validates webhook settings and sends a signed test event', async () => {
    receiver = await startReceiver(0);
    const bad = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId,
      webhookUrl: receiver.url,
    });
    assert.equal(bad.status, 400, bad.raw);
    assert.equal(bad.body.error.field, 'webhookSecret');
    const ftp = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId,
      webhookUrl: 'ftp://127.0.0.1/x',
      webhookSecret: SECRET,
    });
    assert.equal(ftp.status, 400, ftp.raw);
    const plain = await addDestination({});
    assert.equal((await statusOf(plain.id)).state, 'disabled');
    const patched = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/destinations/${plain.id}`, {
      webhookUrl: receiver.url,
      webhookSecret: SECRET,
    });
    assert.equal(patched.status, 200, patched.raw);
    assert.equal(patched.body.hasWebhookSecret, true);
    // A later change keeps the secret.
    const renamed = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/destinations/${plain.id}`, {
      name: 'Help',
    });
    assert.equal(renamed.body.hasWebhookSecret, true);
    const test = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${plain.id}/webhook/test`);
    assert.equal(test.status, 200, test.raw);
    assert.equal(test.body.ok, true);
    const sent = receiver.got[0] as Received;
    assert.equal((JSON.parse(sent.body) as Obj).type, 'webhook.test');
    assert.equal(
      verifySignature({
        secret: SECRET,
        body: sent.body,
        timestamp: sent.headers['x-mailroom-timestamp'] as string,
        signature: sent.headers['x-mailroom-signature'] as string,
        nowSeconds: Math.floor(Date.now() / 1000),
      }),
      true,
    );
    const removed = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/destinations/${plain.id}`, {
      webhookUrl: null,
    });
    assert.equal(removed.body.webhookUrl, null);
    assert.equal(removed.body.hasWebhookSecret, false);
    assert.ok(!JSON.stringify([patched.body, renamed.body, test.body]).includes(SECRET));
  });
});

forEachBackend('webhooks to internal addresses (the default policy)', (kind) => {
  let h: ApiHarness;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let tenantId: string;
  let serverId: string;

  beforeEach(async () => {
    h = await openApiHarness(kind, undefined, {}, {}, undefined, { webhookAddresses: AddressPolicy.strict() });
    receiver = await startReceiver(0);
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Hooks' })).body.id;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Main',
      imap: {
        host: '127.0.0.1',
        port: 1143,
        secure: false,
        user: 'support@example.com',
        auth: { method: 'password', password: 'imap-pass' },
      },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    });
    assert.equal(server.status, 201, server.raw);
    serverId = server.body.id;
  });
  afterEach(async () => {
    await h.close();
    receiver.server.close();
  });

  it('refuses loopback, private, link-local, metadata and unique-local URLs (and names resolving to them) with 400 naming webhookUrl', async () => {
    const port = new URL(receiver.url).port;
    for (const url of [
      receiver.url,
      `http://localhost:${port}/hook`,
      'http://10.1.2.3/hook',
      'https://192.168.0.10/hook',
      'http://100.64.0.1/hook',
      'http://169.254.169.254/latest/meta-data/',
      'http://[::1]/hook',
      'http://[fd00:ec2::254]/hook',
      'http://[::ffff:10.0.0.1]/hook',
      'http://0.0.0.0/hook',
    ]) {
      const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
        name: 'Support',
        address: 'support@example.com',
        serverId,
        webhookUrl: url,
        webhookSecret: SECRET,
      });
      assert.equal(res.status, 400, `${url}: ${res.raw}`);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      assert.equal(res.body.error.field, 'webhookUrl', url);
    }
    const plain = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId,
    });
    assert.equal(plain.status, 201, plain.raw);
    const patched = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/destinations/${plain.body.id}`, {
      webhookUrl: 'http://172.16.5.5/hook',
      webhookSecret: SECRET,
    });
    assert.equal(patched.status, 400, patched.raw);
    assert.equal(patched.body.error.field, 'webhookUrl');
    // A public address passes (nothing is sent at validation).
    const ok = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/destinations/${plain.body.id}`, {
      webhookUrl: 'https://203.0.113.9/hook',
      webhookSecret: SECRET,
    });
    assert.equal(ok.status, 200, ok.raw);
    assert.deepEqual(receiver.got, []);
  });

  it('refuses at connect time a stored URL that leads inside: an open port and a closed one answer alike', async () => {
    // Stored as an engine that allowed private addresses stored it (before the upgrade, or a
    // name whose answer changed since): the POST itself must be refused.
    const permissive = createAccounts(h.store, h.sealer, quietLogger, {
      webhookAddresses: AddressPolicy.allowPrivate(),
    });
    const port = new URL(receiver.url).port;
    const open = await permissive.destinations.create(tenantId, {
      name: 'Open',
      address: 'open@example.com',
      serverId,
      webhookUrl: `http://localhost:${port}/hook`,
      webhookSecret: SECRET,
    });
    const closed = await permissive.destinations.create(tenantId, {
      name: 'Closed',
      address: 'closed@example.com',
      serverId,
      webhookUrl: 'http://127.0.0.1:1/hook',
      webhookSecret: SECRET,
    });
    const answers = [];
    for (const d of [open, closed]) {
      const test = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${d.id}/webhook/test`);
      assert.equal(test.status, 200, test.raw);
      answers.push({ ok: test.body.ok, status: test.body.status, error: test.body.error });
    }
    assert.deepEqual(answers, [
      { ok: false, status: null, error: 'address not allowed' },
      { ok: false, status: null, error: 'address not allowed' },
    ]);
    assert.deepEqual(receiver.got, [], 'nothing reached the receiver');
  });
});
