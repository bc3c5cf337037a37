import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RoutedSignals } from '../../src/inbound/routed-signals.js';
import type { Notifications } from '../../src/store/notifications.js';
import {
  addRouteTarget,
  forEachBackend,
  openApiHarness,
  routeAndSignal,
  type ApiHarness,
} from '../support/api-harness.js';
import { capturingLogger } from '../support/log-capture.js';
import { eventually } from '../support/mail.js';
import type { RouteTarget } from '../support/routed-messages.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** Reads server-sent events from a live socket: each `{id, event, data}` as it arrives. */
function openEvents(url: string, headers: Record<string, string>) {
  const events: Array<{ id: string; event: string; data: Obj }> = [];
  let res: IncomingMessage | undefined;
  const opened = new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(url, { headers }, (r) => {
      res = r;
      let buffer = '';
      r.setEncoding('utf8');
      r.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(
            block
              .split('\n')
              .filter((l) => !l.startsWith(':') && l.includes(': '))
              .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
          );
          if (fields.event) {
            events.push({ id: String(fields.id), event: String(fields.event), data: JSON.parse(String(fields.data)) });
          }
        }
      });
      resolve(r);
    });
    req.once('error', reject);
    req.end();
  });
  return { events, opened, close: () => res?.destroy() };
}

forEachBackend('agent waits: long polls, event streams', (kind) => {
  let h: ApiHarness;
  let target: RouteTarget;
  let feedUrl: string;

  beforeEach(async () => {
    h = await openApiHarness(kind);
    target = await addRouteTarget(h, 'Waits');
    feedUrl = `/api/v1/tenants/${target.tenantId}/destinations/${target.destinationId}/messages`;
  });
  afterEach(async () => {
    await h.close();
  });

  const route = (n: number): Promise<number[]> => routeAndSignal(h, target, n);

  it('wakes a waiting long poll when a message is routed, reading the database only then', async () => {
    const deliveries = h.store.deliveries as unknown as Record<string, (...args: unknown[]) => unknown>;
    const reads = { n: 0 };
    const originals = new Map<string, (...args: unknown[]) => unknown>();
    for (const name of ['feedAfter', 'feedRows', 'latestSeqs']) {
      const original = deliveries[name] as (...args: unknown[]) => unknown;
      originals.set(name, original);
      deliveries[name] = (...args: unknown[]) => {
        reads.n += 1;
        return original.apply(h.store.deliveries, args);
      };
    }
    try {
      const started = Date.now();
      const poll = h.call<Obj>('GET', `${feedUrl}?after=0&wait=20`);
      await eventually(async () => (h.inbound.signals.waiting === 1 ? true : undefined));
      // Waiting 2.5 s: a poll that re-read the database every second would read three times more.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      assert.equal(reads.n, 1, 'one read before waiting, none while waiting');
      const [seq] = await route(1);
      const answer = await poll;
      assert.equal(answer.status, 200, answer.raw);
      assert.deepEqual(
        answer.body.messages.map((m: Obj) => m.seq),
        [seq],
      );
      assert.equal(reads.n, 2, 'one more read once woken');
      assert.ok(Date.now() - started < 10_000);
      assert.equal(h.inbound.signals.waiting, 0, 'the wait is gone once answered');
    } finally {
      for (const [name, original] of originals) deliveries[name] = original;
    }
  });

  it('does not miss a message routed between the read and the wait', async () => {
    // The read happens, then the message is routed before the poll would wait: it must not wait.
    const deliveries = h.store.deliveries;
    const original = deliveries.feedAfter.bind(deliveries);
    let first = true;
    deliveries.feedAfter = async (...args: Parameters<typeof original>) => {
      const rows = await original(...args);
      if (first) {
        first = false;
        await route(1);
      }
      return rows;
    };
    try {
      const started = Date.now();
      const answer = await h.call<Obj>('GET', `${feedUrl}?after=0&wait=20`);
      assert.equal(answer.body.messages.length, 1);
      assert.ok(Date.now() - started < 5_000, `answered after ${Date.now() - started} ms`);
    } finally {
      deliveries.feedAfter = original;
    }
  });

  it('ends a long poll whose client hung up, freeing its slot at once', async () => {
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = h.app.server.address() as AddressInfo;
    const req = request(`http://127.0.0.1:${port}${feedUrl}?after=0&wait=60`, {
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    req.on('error', () => undefined); // destroyed below on purpose
    req.end();
    await eventually(async () => (h.inbound.signals.waiting === 1 ? true : undefined));
    req.destroy();
    // Within moments, not after the 60 s the poll asked for (the slot was held until then).
    await eventually(async () => (h.inbound.signals.waiting === 0 ? true : undefined), 5_000);
  });

  it('limits the waits one token holds open: 429 with Retry-After beyond the limit, others unaffected', async () => {
    const issued = await h.call<Obj>('POST', `/api/v1/tenants/${target.tenantId}/tokens`, { name: 'agents' });
    const tenantToken = issued.body.token as string;
    const polls = Array.from({ length: 200 }, () => h.call<Obj>('GET', `${feedUrl}?after=0&wait=30`));
    await eventually(async () => (h.inbound.signals.waiting === 200 ? true : undefined));
    const refused = await h.call<Obj>('GET', `${feedUrl}?after=0&wait=30`);
    assert.equal(refused.status, 429, refused.raw);
    assert.equal(refused.body.error.code, 'TOO_MANY_WAITS');
    assert.equal(refused.headers['retry-after'], '5');
    // Without `wait` nothing is held: answered at once.
    assert.equal((await h.call<Obj>('GET', `${feedUrl}?after=0`)).status, 200);
    // Another token has slots of its own.
    const other = h.call<Obj>('GET', `${feedUrl}?after=0&wait=30`, undefined, tenantToken);
    await eventually(async () => (h.inbound.signals.waiting === 201 ? true : undefined));
    const [seq] = await route(1);
    const answers = await Promise.all([...polls, other]);
    for (const a of answers)
      assert.deepEqual(
        a.body.messages.map((m: Obj) => m.seq),
        [seq],
      );
    assert.equal(h.inbound.signals.waiting, 0);
    // Slots are given back: the token may wait again.
    const again = h.call<Obj>('GET', `${feedUrl}?after=${seq}&wait=30`);
    await eventually(async () => (h.inbound.signals.waiting === 1 ? true : undefined));
    h.inbound.feed.endWaits();
    assert.equal((await again).status, 200);
  });

  it('streams routed messages as server-sent events, resumable with Last-Event-ID', async () => {
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (h.app.server.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}/api/v1/tenants/${target.tenantId}/destinations/${target.destinationId}/events`;
    const auth = { authorization: `Bearer ${h.adminToken}` };
    const before = await route(3);
    const stream = openEvents(`${url}?after=0`, auth);
    const res = await stream.opened;
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    await eventually(async () => (stream.events.length === 3 ? true : undefined));
    const [later] = await route(1);
    const started = Date.now();
    await eventually(async () => (stream.events.length === 4 ? true : undefined), 5_000, 5);
    assert.ok(Date.now() - started < 1_000, 'a routed message reaches the stream at once');
    assert.deepEqual(
      stream.events.map((e) => Number(e.id)),
      [...before, later],
    );
    assert.ok(stream.events.every((e) => e.event === 'message.routed' && e.data.seq === Number(e.id)));
    stream.close();
    await eventually(async () => (h.inbound.signals.waiting === 0 ? true : undefined));

    // A client reconnecting says where it was; `after` in the URL is overridden by it.
    const resumed = openEvents(`${url}?after=0`, { ...auth, 'last-event-id': String(before[1]) });
    const resumedRes = await resumed.opened;
    await eventually(async () => (resumed.events.length === 2 ? true : undefined));
    assert.deepEqual(
      resumed.events.map((e) => Number(e.id)),
      [before[2], later],
    );
    // The engine stopping ends the stream.
    h.inbound.feed.endWaits();
    await eventually(async () => (resumedRes.complete ? true : undefined));
    resumed.close();

    const missing = openEvents(url.replace(target.destinationId, '00000000-0000-4000-8000-000000000000'), auth);
    assert.equal((await missing.opened).statusCode, 404);
    missing.close();
    const badId = openEvents(url, { ...auth, 'last-event-id': 'x' });
    assert.equal((await badId.opened).statusCode, 400);
    badId.close();
  });

  if (kind === 'postgres') {
    it('wakes waits on another instance through LISTEN/NOTIFY, and again after a lost connection', async () => {
      const { logger } = capturingLogger('debug');
      const notificationsA = h.store.notifications(logger);
      const notificationsB = h.store.notifications(logger);
      const a = new RoutedSignals(notificationsA, logger);
      const b = new RoutedSignals(notificationsB, logger);
      const closeAll = async (all: Notifications[]): Promise<void> => {
        a.stop();
        b.stop();
        for (const n of all) await n.close();
      };
      try {
        a.start();
        b.start();
        // Both listening (LISTEN is sent on a connection of its own as the first subscription is made).
        await eventually(async () => {
          const rows = await h.store.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'mailroom-listen' AND datname = current_database()`,
          );
          return Number(rows[0]?.n) === 2 ? true : undefined;
        });
        const abort = new AbortController();
        const watch = b.watch(target.destinationId, 0);
        const other = b.watch('00000000-0000-4000-8000-000000000000', 0);
        const started = Date.now();
        const woken = watch.next(10_000, abort.signal);
        let otherWoken = false;
        void other.next(10_000, abort.signal).then(() => (otherWoken = true));
        a.routed([target.destinationId]);
        await woken;
        assert.ok(Date.now() - started < 2_000, `woken after ${Date.now() - started} ms`);
        assert.equal(otherWoken, false, 'a wait on another destination stays asleep');

        // The listening connection is lost: once listening again, every wait is woken once
        // (what was announced meanwhile is read from the database), and announcements arrive again.
        const again = watch.next(20_000, abort.signal);
        await h.store.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE application_name = 'mailroom-listen' AND datname = current_database() AND pid <> pg_backend_pid()`,
        );
        await again;
        await eventually(async () => (otherWoken ? true : undefined), 20_000);
        const third = watch.next(10_000, abort.signal);
        const t2 = Date.now();
        a.routed([target.destinationId]);
        await third;
        assert.ok(Date.now() - t2 < 2_000);
        watch.close();
        other.close();
        abort.abort();
      } finally {
        await closeAll([notificationsA, notificationsB]);
      }
    });
  }
});
