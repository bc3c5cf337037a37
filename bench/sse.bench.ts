/**
 * Server-sent events: 1,000 open streams (BENCH_SSE_STREAMS) of `GET …/destinations/{id}/events`
 * spread over 100 destinations, on PostgreSQL, through the real API on a socket. Messages are
 * routed to 20 destinations one after another (each reaches its 10 streams); wake latency from
 * the signal after the routing commit to the event's arrival at the client. Baseline, same run,
 * same client: a bare node:http server holding the same streams and writing the event when told.
 * Target: p99 <= 100 ms.
 */
import { performance } from 'node:perf_hooks';
import { runBench } from './support/environment.js';
import { startAgentApi } from './support/agent-api.js';
import { heldAgent, until, openStream, startBareServer } from './support/held-requests.js';
import { emitWakeLatencies, progress } from './support/report.js';

const BENCH = 'sse';
const STREAMS = Number(process.env.BENCH_SSE_STREAMS ?? 1_000);
const DESTINATIONS = 100;
const WAKES = 20;

/** Opens `perDestination` streams per destination; answers the arrival times seen per destination. */
async function openAll(
  destinations: string[],
  perDestination: number,
  open: (d: string, onEvent: (at: number) => void) => Promise<() => void>,
): Promise<Map<string, number[]>> {
  const arrivals = new Map<string, number[]>();
  for (const d of destinations) {
    const list: number[] = [];
    arrivals.set(d, list);
    await Promise.all(Array.from({ length: perDestination }, () => open(d, (at) => list.push(at))));
  }
  return arrivals;
}

runBench(BENCH, async () => {
  const api = await startAgentApi(DESTINATIONS);
  const agent = heldAgent();
  const auth = { authorization: `Bearer ${api.token}` };
  const perDestination = STREAMS / DESTINATIONS;
  const arrivals = await openAll(api.destinationIds, perDestination, (d, onEvent) =>
    openStream(agent, api.port, `/api/v1/tenants/${api.tenantId}/destinations/${d}/events`, auth, onEvent),
  );
  await until(() => api.waiting() === STREAMS, 'all streams open');
  progress(BENCH, `${STREAMS} event streams open on ${DESTINATIONS} destinations`);
  const latencies: number[] = [];
  for (const d of api.destinationIds.slice(0, WAKES)) {
    await api.route(d);
    const routedAt = performance.now();
    const seen = arrivals.get(d) as number[];
    await until(() => seen.length === perDestination, 'events arrived', 10_000);
    for (const at of seen) latencies.push(at - routedAt);
  }

  const bare = await startBareServer();
  const bareArrivals = await openAll(api.destinationIds, perDestination, (d, onEvent) =>
    openStream(agent, bare.port, `/stream/${d}`, {}, onEvent),
  );
  await until(() => bare.held() === STREAMS, 'all bare streams held');
  const bareLatencies: number[] = [];
  for (const d of api.destinationIds.slice(0, WAKES)) {
    const started = performance.now();
    bare.wake(d);
    const seen = bareArrivals.get(d) as number[];
    await until(() => seen.length === perDestination, 'bare events arrived', 10_000);
    for (const at of seen) bareLatencies.push(at - started);
  }
  const details = { streams: STREAMS, destinations: DESTINATIONS, events: latencies.length };
  emitWakeLatencies(BENCH, latencies, bareLatencies, details);
});
