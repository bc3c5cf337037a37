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

const SECRET = 'batch-webhook-secret-7d20aa91';

interface BatchPost {
  key: string;
  type: string;
  id: string;
  seqs: number[];
  eventKeys: string[];
  status: number;
  signed: boolean;
}

/** A receiver on 127.0.0.1 that records each batched POST; `answer(n)` decides the n-th POST's status. */
async function startReceiver(answer: (n: number) => number = () => 200) {
  const posts: BatchPost[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const parsed = JSON.parse(body) as Obj;
      const status = answer(posts.length + 1);
      posts.push({
        key: req.headers['idempotency-key'] as string,
        type: req.headers['x-mailroom-event'] as string,
        id: parsed.id as string,
        seqs: ((parsed.events ?? []) as Obj[]).map((e) => e.seq as number),
        eventKeys: ((parsed.events ?? []) as Obj[]).map((e) => e.id as string),
        status,
        signed: verifySignature({
          secret: SECRET,
          body,
          timestamp: req.headers['x-mailroom-timestamp'] as string,
          signature: req.headers['x-mailroom-signature'] as string,
          nowSeconds: Number(req.headers['x-mailroom-timestamp']),
        }),
      });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    posts,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** Lets the dispatcher act on what the clock (or a wake) made due: real time, decides nothing. */
const settle = (ms = 300): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

forEachBackend('batched webhook delivery (webhookBatch)', (kind) => {
  let h: ApiHarness;
  let target: RouteTarget;
  const receivers: Receiver[] = [];
  const dispatchers: Webhooks[] = [];

  beforeEach(async () => {
    h = await openApiHarness(kind);
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Batching' })).body.id as string;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, serverBody(1));
    assert.equal(server.status, 201, server.raw);
    target = { tenantId, serverId: server.body.id as string, destinationId: '' };
  });
  afterEach(async () => {
    for (const w of dispatchers.splice(0)) await w.stop();
    await h.close();
    for (const r of receivers.splice(0)) await r.close();
  });

  const destinations = (): string => `/api/v1/tenants/${target.tenantId}/destinations`;

  async function receiver(answer?: (n: number) => number): Promise<Receiver> {
    const r = await startReceiver(answer);
    receivers.push(r);
    return r;
  }

  async function batchingDestination(url: string, batch: { maxEvents: number; maxWaitMs: number }): Promise<void> {
    const res = await h.call<Obj>(
      'POST',
      destinations(),
      destinationBody(1, target.serverId, { webhookUrl: url, webhookSecret: SECRET, webhookBatch: batch }),
    );
    assert.equal(res.status, 201, res.raw);
    target.destinationId = res.body.id as string;
  }

  function dispatcher(clock: FakeClock, options: Partial<WebhookOptions> = {}): Webhooks {
    const w = createWebhooks({
      store: h.store,
      sealer: h.sealer,
      logger: capturingLogger('debug').logger,
      signals: { subscribe: () => () => undefined },
      options: { retryMinMs: 1_000, retryMaxMs: 2_000, pollIntervalMs: 5_000, requestTimeoutMs: 2_000, ...options },
      clock,
      addresses: AddressPolicy.allowPrivate(),
    });
    dispatchers.push(w);
    return w;
  }

  it('is set, shown, kept by a change that omits it, checked by field, and dropped with the webhook', async () => {
    const r = await receiver();
    await batchingDestination(r.url, { maxEvents: 50, maxWaitMs: 2_000 });
    const path = `${destinations()}/${target.destinationId}`;
    assert.deepEqual((await h.call<Obj>('GET', path)).body.webhookBatch, { maxEvents: 50, maxWaitMs: 2_000 });
    const renamed = await h.call<Obj>('PATCH', path, { description: 'changed' });
    assert.deepEqual(renamed.body.webhookBatch, { maxEvents: 50, maxWaitMs: 2_000 }, renamed.raw);

    for (const [batch, field] of [
      [{ maxEvents: 0, maxWaitMs: 0 }, 'maxEvents'],
      [{ maxEvents: 1001, maxWaitMs: 0 }, 'maxEvents'],
      [{ maxEvents: 5, maxWaitMs: 60_001 }, 'maxWaitMs'],
      [{ maxEvents: 5 }, 'maxWaitMs'],
      [{ maxEvents: 5, maxWaitMs: 0, extra: 1 }, 'extra'],
    ] as const) {
      const res = await h.call<Obj>('PATCH', path, { webhookBatch: batch });
      assert.equal(res.status, 400, res.raw);
      assert.match(res.raw, new RegExp(`webhookBatch.*${field}`), res.raw);
    }
    const other = await h.call<Obj>(
      'POST',
      destinations(),
      destinationBody(2, target.serverId, { webhookBatch: { maxEvents: 5, maxWaitMs: 0 } }),
    );
    assert.equal(other.status, 400, other.raw);
    assert.match(other.raw, /'webhookBatch' is only accepted together with a 'webhookUrl'/);

    const off = await h.call<Obj>('PATCH', path, { webhookUrl: null });
    assert.equal(off.status, 200, off.raw);
    assert.equal(off.body.webhookBatch, null);
    const unbatched = await h.call<Obj>('PATCH', path, { webhookUrl: r.url, webhookSecret: SECRET });
    assert.equal(unbatched.body.webhookBatch, null, 'a new webhook starts without batching');
  });

  it('POSTs full batches at once and a short one when its oldest event has waited maxWaitMs, in order, signed', async () => {
    const r = await receiver();
    await batchingDestination(r.url, { maxEvents: 10, maxWaitMs: 30_000 });
    const seqs = await routeMessages(h.store, target, 25);
    // Routed with the wall clock's now(): the fake clock starts there and moves only when told.
    const clock = new FakeClock(Date.now());
    dispatcher(clock).start();
    await eventually(async () => (r.posts.length === 2 ? true : undefined));
    await settle();
    assert.equal(r.posts.length, 2, 'the last five wait for more events or for maxWaitMs');
    clock.advance(10_000);
    await settle();
    assert.equal(r.posts.length, 2, 'not before maxWaitMs');
    clock.advance(21_000);
    await eventually(async () => (r.posts.length === 3 ? true : undefined));

    assert.deepEqual(
      r.posts.map((p) => p.seqs),
      [seqs.slice(0, 10), seqs.slice(10, 20), seqs.slice(20)],
    );
    for (const p of r.posts) {
      assert.equal(p.type, 'message.routed.batch');
      assert.ok(p.signed, 'each batch is signed');
      assert.equal(p.key, `${target.destinationId}:${p.seqs[0]}-${p.seqs.at(-1)}`);
      assert.equal(p.id, p.key, 'the body names the batch as its Idempotency-Key does');
      assert.deepEqual(
        p.eventKeys,
        p.seqs.map((s) => `${target.destinationId}:${s}`),
        'each event keeps its own key',
      );
    }
    const status = await h.call<Obj>('GET', `${destinations()}/${target.destinationId}/webhook`);
    assert.equal(status.body.delivered, 25, status.raw);
    assert.equal(status.body.pending, 0, status.raw);
  });

  it('posts several batches from one read (as many as fit in runLength), across reads', async () => {
    const r = await receiver();
    await batchingDestination(r.url, { maxEvents: 3, maxWaitMs: 30_000 });
    const seqs = await routeMessages(h.store, target, 20);
    const clock = new FakeClock(Date.now());
    // Reads of 9 rows (three batches): 9 + 9 + 2, the last two waiting for maxWaitMs.
    dispatcher(clock, { runLength: 10 }).start();
    await eventually(async () => (r.posts.length === 6 ? true : undefined));
    await settle();
    assert.equal(r.posts.length, 6);
    clock.advance(31_000);
    await eventually(async () => (r.posts.length === 7 ? true : undefined));
    assert.deepEqual(
      r.posts.map((p) => p.seqs),
      [0, 3, 6, 9, 12, 15, 18].map((i) => seqs.slice(i, i + 3)),
    );
  });

  it('sends the events waiting for a batch at once when batching is turned off', async () => {
    const r = await receiver();
    await batchingDestination(r.url, { maxEvents: 100, maxWaitMs: 60_000 });
    await routeMessages(h.store, target, 2);
    const waitingMs = async (): Promise<number[]> =>
      (
        await h.store.query<{ ms: string }>(
          `SELECT EXTRACT(EPOCH FROM (next_attempt_at - now())) * 1000 AS ms FROM webhook_deliveries
            WHERE destination_id = $1 ORDER BY seq`,
          [target.destinationId],
        )
      ).map((row) => Number(row.ms));
    assert.ok(
      (await waitingMs()).every((ms) => ms > 50_000),
      'they wait for more events',
    );
    const off = await h.call<Obj>('PATCH', `${destinations()}/${target.destinationId}`, { webhookBatch: null });
    assert.equal(off.status, 200, off.raw);
    assert.ok(
      (await waitingMs()).every((ms) => ms <= 0),
      'due now',
    );
  });

  it('retries a failed batch from its first event, never skipping or reordering', async () => {
    const r = await receiver((n) => (n === 1 || n === 3 ? 503 : 200));
    await batchingDestination(r.url, { maxEvents: 4, maxWaitMs: 0 });
    const seqs = await routeMessages(h.store, target, 10);
    const clock = new FakeClock(Date.now());
    dispatcher(clock).start();
    for (
      let i = 0;
      i < 40 && new Set(r.posts.filter((p) => p.status === 200).flatMap((p) => p.seqs)).size < 10;
      i += 1
    ) {
      await settle(100);
      clock.advance(2_000);
    }
    const taken: number[] = [];
    for (const p of r.posts) {
      assert.equal(p.seqs[0], seqs[taken.length], `a POST starts at the first event not taken (${taken.length})`);
      if (p.status === 200) taken.push(...p.seqs);
    }
    assert.deepEqual(taken, seqs, 'every event taken once, in order');
    assert.equal(r.posts[0]?.status, 503);
    assert.deepEqual(r.posts[1]?.seqs, r.posts[0]?.seqs, 'the failed batch went again');
  });
});
