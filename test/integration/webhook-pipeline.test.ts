import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createWebhooks, type Webhooks, type WebhookOptions } from '../../src/inbound/webhooks/index.js';
import { verifySignature } from '../../src/inbound/webhooks/signature.js';
import { AddressPolicy } from '../../src/shared/address-policy.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { capturingLogger } from '../support/log-capture.js';
import { destinationBody, serverBody } from '../support/fixtures.js';
import { eventually } from '../support/mail.js';
import { routeMessages, type RouteTarget } from '../support/routed-messages.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const SECRET = 'pipeline-webhook-secret-41c9e2';

interface Post {
  key: string;
  seq: number;
  status: number;
  signed: boolean;
}

/**
 * A real receiver on 127.0.0.1: records every POST (its key, seq and the status it answered);
 * `answer(n)` decides the status of the n-th POST (1-based).
 */
async function startReceiver(answer: (n: number) => number = () => 200, port = 0) {
  const posts: Post[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const status = answer(posts.length + 1);
      const signed = verifySignature({
        secret: SECRET,
        body,
        timestamp: req.headers['x-mailroom-timestamp'] as string,
        signature: req.headers['x-mailroom-signature'] as string,
        nowSeconds: Number(req.headers['x-mailroom-timestamp']),
      });
      posts.push({ key: req.headers['idempotency-key'] as string, seq: (JSON.parse(body) as Obj).seq, status, signed });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    posts,
    port: address.port,
    url: `http://127.0.0.1:${address.port}/hooks`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/**
 * What the promises of the webhook outbox mean for a receiver: every event answered 2xx at
 * least once, each first 2xx in seq order (no event got before an earlier one was taken), every
 * POST of an event under the same key, every POST signed.
 */
function assertDeliveredInOrder(posts: Post[], seqs: number[], destinationId: string): void {
  const firstSuccess: number[] = [];
  const seen = new Set<number>();
  for (const p of posts) {
    assert.equal(p.key, `${destinationId}:${p.seq}`, 'the Idempotency-Key names the destination and seq');
    assert.ok(p.signed, `POST of seq ${p.seq} is signed`);
    if (p.status >= 200 && p.status <= 299 && !seen.has(p.seq)) {
      seen.add(p.seq);
      firstSuccess.push(p.seq);
    }
  }
  assert.deepEqual(firstSuccess, seqs, 'each event taken once, in seq order');
  // No POST of an event before every earlier event was taken.
  const taken = new Set<number>();
  for (const p of posts) {
    for (const s of seqs) {
      if (s >= p.seq) break;
      assert.ok(taken.has(s), `seq ${p.seq} was posted before seq ${s} was taken`);
    }
    if (p.status >= 200 && p.status <= 299) taken.add(p.seq);
  }
}

forEachBackend('webhook pipeline', (kind) => {
  let h: ApiHarness;
  let target: RouteTarget;
  let receiver: Receiver | undefined;
  const extra: Webhooks[] = [];

  beforeEach(async () => {
    h = await openApiHarness(kind);
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Pipeline' })).body.id as string;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, serverBody(1));
    assert.equal(server.status, 201, server.raw);
    target = { tenantId, serverId: server.body.id as string, destinationId: '' };
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-30).join('\n')}\n`);
    }
    for (const w of extra.splice(0)) await w.stop();
    await h.close();
    await receiver?.close();
    receiver = undefined;
  });

  async function withWebhook(url: string): Promise<void> {
    const res = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${target.tenantId}/destinations`,
      destinationBody(1, target.serverId, { webhookUrl: url, webhookSecret: SECRET }),
    );
    assert.equal(res.status, 201, res.raw);
    target.destinationId = res.body.id as string;
  }

  function dispatcher(options: Partial<WebhookOptions>, clock?: FakeClock): Webhooks {
    const w = createWebhooks({
      store: h.store,
      sealer: h.sealer,
      logger: capturingLogger('debug').logger,
      signals: { subscribe: () => () => undefined },
      options: { retryMinMs: 50, retryMaxMs: 200, pollIntervalMs: 500, requestTimeoutMs: 2_000, ...options },
      ...(clock && { clock }),
      // The receiver is on 127.0.0.1, which the default policy refuses (MAILROOM_WEBHOOK_ALLOW_PRIVATE).
      addresses: AddressPolicy.allowPrivate(),
    });
    extra.push(w);
    return w;
  }

  it('delivers a backlog run after run without waiting for the outbox poll', async () => {
    receiver = await startReceiver();
    await withWebhook(receiver.url);
    const seqs = await routeMessages(h.store, target, 40);
    // The clock never moves: a dispatcher that waited for its poll (or any timer) between two
    // runs would stop after the first.
    const clock = new FakeClock(Date.now());
    const started = clock.now();
    dispatcher({ runLength: 7, flushEvery: 3, pollIntervalMs: 60_000 }, clock).start();
    await eventually(async () => (receiver?.posts.length === 40 ? true : undefined), 15_000);
    assert.equal(clock.now(), started);
    assertDeliveredInOrder(receiver.posts, seqs, target.destinationId);
    await eventually(async () => {
      const s = await h.call<Obj>(
        'GET',
        `/api/v1/tenants/${target.tenantId}/destinations/${target.destinationId}/webhook`,
      );
      return s.body.delivered === 40 && s.body.pending === 0 ? true : undefined;
    });
  });

  it('keeps order and delivers everything through a receiver that fails every 7th POST', async () => {
    receiver = await startReceiver((n) => (n % 7 === 0 ? 503 : 200));
    await withWebhook(receiver.url);
    const seqs = await routeMessages(h.store, target, 60);
    dispatcher({ runLength: 16, flushEvery: 4 }).start();
    await eventually(
      async () => {
        const s = await h.call<Obj>(
          'GET',
          `/api/v1/tenants/${target.tenantId}/destinations/${target.destinationId}/webhook`,
        );
        return s.body.delivered === 60 ? true : undefined;
      },
      30_000,
      100,
    );
    assert.ok(
      receiver.posts.some((p) => p.status === 503),
      'the receiver failed some POSTs',
    );
    assertDeliveredInOrder(receiver.posts, seqs, target.destinationId);
    // A failed event is retried, never skipped: each 503 is followed by a POST of the same seq.
    for (const [i, p] of receiver.posts.entries()) {
      if (p.status === 503) assert.equal(receiver.posts[i + 1]?.seq, p.seq, `seq ${p.seq} was retried next`);
    }
  });

  it('shares one destination between two instances: in order, each event taken once', async () => {
    receiver = await startReceiver();
    await withWebhook(receiver.url);
    const seqs = await routeMessages(h.store, target, 120);
    const a = dispatcher({ runLength: 10, flushEvery: 3 });
    const b = dispatcher({ runLength: 10, flushEvery: 3 });
    a.start();
    b.start();
    const wakes = setInterval(() => {
      a.dispatcher.wake();
      b.dispatcher.wake();
    }, 5);
    try {
      await eventually(
        async () => (receiver && new Set(receiver.posts.map((p) => p.seq)).size === 120 ? true : undefined),
        // Waits for the deliveries, decides nothing: generous for the embedded database on a loaded machine.
        60_000,
      );
    } finally {
      clearInterval(wakes);
    }
    assertDeliveredInOrder(receiver.posts, seqs, target.destinationId);
    assert.equal(receiver.posts.length, 120, 'no event was posted twice while both ran');
  });

  it('holds the events while the receiver is down for a minute, then delivers them in order', async () => {
    // The receiver's port is known but nothing listens on it for a minute (of the injected clock).
    const probe = await startReceiver();
    const port = probe.port;
    await probe.close();
    await withWebhook(`http://127.0.0.1:${port}/hooks`);
    const seqs = await routeMessages(h.store, target, 25);
    const clock = new FakeClock(Date.now());
    const w = dispatcher(
      { retryMinMs: 1_000, retryMaxMs: 15_000, pollIntervalMs: 5_000, failingAfterAttempts: 4 },
      clock,
    );
    w.start();
    const statusOf = async (): Promise<Obj> =>
      (await h.call<Obj>('GET', `/api/v1/tenants/${target.tenantId}/destinations/${target.destinationId}/webhook`))
        .body;
    for (let elapsed = 0; elapsed < 60_000; elapsed += 1_000) {
      const before = (await statusOf()).head?.attempts as number;
      clock.advance(1_000);
      // Let an attempt that fell due run (a refused connection answers at once).
      await new Promise((resolve) => setTimeout(resolve, before < 6 ? 30 : 5));
    }
    const down = await statusOf();
    assert.equal(down.delivered, 0);
    assert.equal(down.pending, 25);
    assert.equal(down.head.seq, seqs[0], 'the oldest event waits at the head');
    assert.ok(down.head.attempts >= 4, `retried while down (attempts ${down.head.attempts})`);
    assert.equal(down.state, 'failing');

    receiver = await startReceiver(() => 200, port);
    for (let i = 0; i < 100 && receiver.posts.length < 25; i += 1) {
      clock.advance(5_000);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await eventually(async () => (receiver?.posts.length === 25 ? true : undefined));
    assertDeliveredInOrder(receiver.posts, seqs, target.destinationId);
    await eventually(async () => ((await statusOf()).state === 'ok' ? true : undefined));
  });
  it("keeps one tenant's slow receivers from holding up another tenant's webhooks", async () => {
    // Tenant A: three destinations whose receiver holds every answer until released.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = createServer((req, res) => {
      req.resume();
      req.on('end', () => void held.then(() => res.writeHead(200).end()));
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/slow`;
    try {
      const targetsA: RouteTarget[] = [];
      for (let n = 1; n <= 3; n += 1) {
        const res = await h.call<Obj>(
          'POST',
          `/api/v1/tenants/${target.tenantId}/destinations`,
          destinationBody(`a${n}`, target.serverId, { webhookUrl: slowUrl, webhookSecret: SECRET }),
        );
        assert.equal(res.status, 201, res.raw);
        targetsA.push({ ...target, destinationId: res.body.id as string });
      }
      for (const t of targetsA) await routeMessages(h.store, t, 2);
      // Tenant B, routed after A (A's events are older): one destination, a receiver that answers at once.
      receiver = await startReceiver();
      const tenantB = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Other tenant' })).body.id as string;
      const serverB = await h.call<Obj>('POST', `/api/v1/tenants/${tenantB}/servers`, serverBody(2));
      assert.equal(serverB.status, 201, serverB.raw);
      const destinationB = await h.call<Obj>(
        'POST',
        `/api/v1/tenants/${tenantB}/destinations`,
        destinationBody('b', serverB.body.id as string, { webhookUrl: receiver.url, webhookSecret: SECRET }),
      );
      assert.equal(destinationB.status, 201, destinationB.raw);
      const seqsB = await routeMessages(
        h.store,
        { tenantId: tenantB, serverId: serverB.body.id as string, destinationId: destinationB.body.id as string },
        1,
      );

      // Two slots, one per tenant at most: A's oldest destination takes one, B gets the other at
      // once, while A's receiver still holds its answer (by age alone, A would fill both).
      dispatcher({ maxInFlight: 2, maxInFlightPerTenant: 1, requestTimeoutMs: 20_000 }).start();
      await eventually(async () => (receiver?.posts.length === 1 ? true : undefined), 10_000);
      assert.deepEqual(
        receiver.posts.map((p) => p.seq),
        seqsB,
      );
    } finally {
      release();
      slow.closeAllConnections();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });
});
