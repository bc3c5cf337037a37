/**
 * Long polls: 2,000 concurrent `GET …/messages?after=<last>&wait=60` (BENCH_LONG_POLL_WAITS) spread
 * over 100 destinations, on PostgreSQL, through the real API on a socket.
 *
 * - Wake latency: messages are routed to 20 destinations one after another (each wakes its 20
 *   waits); from the signal after the routing commit to each answer's arrival at the client.
 *   Baseline, same run, same client: a bare node:http server holding the same requests and
 *   answering them when told (it reads no database). Target: p99 <= 100 ms.
 * - Database statements while all wait: transactions committed in the benchmark's database over
 *   10 s with every wait open and nothing routed, after 11 s for the statistics to settle
 *   (pg_stat_database; the measuring query itself included). Target: <= 5 per second in total.
 */
import { performance } from 'node:perf_hooks';
import { runBench } from './support/environment.js';
import { startAgentApi } from './support/agent-api.js';
import { heldAgent, sleep, until, startBareServer, timedGet } from './support/held-requests.js';
import { compare, emit, emitWakeLatencies, progress } from './support/report.js';

const BENCH = 'long-poll';
const WAITS = Number(process.env.BENCH_LONG_POLL_WAITS ?? 2_000);
const DESTINATIONS = 100;
/** Destinations routed to, one after another, for the wake latency. */
const WAKES = 20;
/** [11000] ms before the statement count starts (PostgreSQL's idle statistics flush is 10 s). */
const SETTLE_MS = 11_000;
/** How long the statement count is taken over, ms. */
const QUIET_MS = 10_000;

runBench(BENCH, async () => {
  const api = await startAgentApi(DESTINATIONS);
  const agent = heldAgent();
  const auth = { authorization: `Bearer ${api.token}` };
  const cursor = new Map<string, number>(api.destinationIds.map((d) => [d, 0]));
  const feed = (d: string): string =>
    `/api/v1/tenants/${api.tenantId}/destinations/${d}/messages?after=${cursor.get(d)}&wait=60`;
  const open = new Map<string, Array<Promise<{ at: number; status: number; body: string }>>>();
  const hold = (d: string, n: number): void => {
    const list = open.get(d) ?? [];
    for (let i = 0; i < n; i += 1) {
      const answer = timedGet(agent, api.port, feed(d), auth);
      answer.catch(() => undefined); // the waits still open at the end are cut by the cleanup
      list.push(answer);
    }
    open.set(d, list);
  };
  const perDestination = WAITS / DESTINATIONS;
  for (const d of api.destinationIds) hold(d, perDestination);
  await until(() => api.waiting() === WAITS, 'all waits open');
  progress(BENCH, `${WAITS} long polls waiting on ${DESTINATIONS} destinations`);

  // PostgreSQL publishes a session's statement counts up to 10 s late (when it goes idle): let
  // those of the first reads land before the window opens.
  await sleep(SETTLE_MS);
  const before = await api.transactions();
  const quietStart = performance.now();
  await sleep(QUIET_MS);
  const statementsPerSecond = ((await api.transactions()) - before) / ((performance.now() - quietStart) / 1000);
  progress(BENCH, `while all waited: ${statementsPerSecond.toFixed(2)} statements/s`);

  const latencies: number[] = [];
  for (const d of api.destinationIds.slice(0, WAKES)) {
    const waits = open.get(d) ?? [];
    open.delete(d);
    const routedAt = await (async () => {
      await api.route(d);
      return performance.now();
    })();
    for (const answer of await Promise.all(waits)) {
      if (answer.status !== 200) throw new Error(`a long poll answered ${answer.status}: ${answer.body}`);
      const { next } = JSON.parse(answer.body) as { next: number };
      cursor.set(d, next);
      latencies.push(answer.at - routedAt);
    }
    hold(d, perDestination);
    await until(() => api.waiting() === WAITS, 'waits open again');
  }

  // The baseline: the same clients against a bare server holding the same requests.
  const bare = await startBareServer();
  const bareOpen = new Map<string, Array<Promise<{ at: number }>>>();
  for (const d of api.destinationIds) {
    bareOpen.set(
      d,
      Array.from({ length: perDestination }, () => {
        const answer = timedGet(agent, bare.port, `/wait/${d}`);
        answer.catch(() => undefined);
        return answer;
      }),
    );
  }
  await until(() => bare.held() === WAITS, 'all bare waits held');
  const bareLatencies: number[] = [];
  for (const d of api.destinationIds.slice(0, WAKES)) {
    const started = performance.now();
    bare.wake(d);
    for (const answer of await Promise.all(bareOpen.get(d) ?? [])) bareLatencies.push(answer.at - started);
  }

  const details = { waits: WAITS, destinations: DESTINATIONS, woken: latencies.length };
  emitWakeLatencies(BENCH, latencies, bareLatencies, details);
  emit(
    compare(
      BENCH,
      'statements-while-waiting',
      'statements/s',
      statementsPerSecond,
      0,
      { valueAtMost: 5 },
      {
        waits: WAITS,
        windowMs: QUIET_MS,
      },
    ),
  );
});
