/**
 * Sending through Microsoft Graph: BENCH_GRAPH_SEND_MESSAGES (2,000) messages through the send
 * API (fastify `inject`) into the disk spool (fsync on), delivered by the account queue with
 * sendMail (MIME) to the fake Graph, first POST until the fake has every message.
 * Baseline: bare sendMail calls of a message of the same size over one keep-alive HTTPS
 * connection, one at a time (as the account queue sends: one message at a time per account), with
 * nothing written to disk or the database. Interleaved: baseline, Mailroom, baseline (the mean of
 * the two baselines is compared). Target: ratio >= 0.7. Needs PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createAccounts } from '../src/accounts/index.js';
import { buildApi } from '../src/api/http-server.js';
import { startFakeGraph } from '../src/harness/fake-graph/index.js';
import { createInbound } from '../src/inbound/index.js';
import { OutboundService } from '../src/outbound/outbound-service.js';
import { SecretSealer } from '../src/shared/sealed-secrets.js';
import { Store } from '../src/store/store.js';
import { addCleanup } from '../test/support/cleanup.js';
import { createTestDatabase, quietLogger } from '../test/support/database.js';
import { runBench, within } from './support/environment.js';
import { graphCaFile, graphCredentials, graphServerInput } from './support/graph.js';
import { compare, emit, progress } from './support/report.js';

const BENCH = 'graph-send';
const MESSAGES = Number(process.env.BENCH_GRAPH_SEND_MESSAGES ?? 2_000);
const CONCURRENCY = 16;
const USER = 'support@bench.example';
const TEXT = 'Hello,\n\nthank you for your message. We are looking into it.\n\nACME Support\n'.repeat(4);

runBench(BENCH, async () => {
  const graph = await startFakeGraph({ users: [USER] });
  addCleanup(() => graph.close());
  const { caDir, caFile } = await graphCaFile(graph);
  const agent = new Agent({ keepAlive: true, ca: graph.ca, maxSockets: 1 });
  addCleanup(async () => agent.destroy());

  const store = await Store.open({ databaseUrl: await createTestDatabase() }, quietLogger);
  addCleanup(() => store.close(), 'first');
  const spoolDir = await mkdtemp(join(tmpdir(), 'mailroom-bench-spool-'));
  addCleanup(() => rm(spoolDir, { recursive: true, force: true }));
  const sealer = new SecretSealer(randomBytes(32));
  const accounts = createAccounts(store, sealer, quietLogger, { caDir });
  const credentials = graphCredentials(sealer, USER);
  const outbound = new OutboundService({
    store,
    credentials,
    logger: quietLogger,
    spoolDir,
    instanceId: 'bench',
    options: { probeIntervalMs: 100, heartbeatIntervalMs: 0 },
  });
  const inbound = createInbound({ store, credentials, logger: quietLogger });
  const app = await buildApi({ accounts, store, inbound, outbound, logger: quietLogger, adminToken: 'bench-admin' });
  addCleanup(() => app.close(), 'first');
  addCleanup(() => outbound.stop(), 'first');
  const tenant = await accounts.tenants.create({ name: 'Bench' });
  const server = await accounts.servers.create(tenant.id, graphServerInput(graph, USER, caFile, false));
  const destination = await accounts.destinations.create(tenant.id, {
    name: 'Support',
    address: USER,
    fromText: 'ACME Support',
    serverId: server.id,
  });
  const url = `/api/v1/tenants/${tenant.id}/destinations/${destination.id}/outbound`;
  await outbound.start();

  // Warm-up of both (untimed), then baseline, Mailroom, baseline.
  await mailroom(200);
  const sample = graph.sent[0]?.raw ?? Buffer.from(TEXT);
  await baseline(200, sample);
  const before = await baseline(MESSAGES, sample);
  progress(BENCH, `baseline: ${MESSAGES} sendMail calls in ${Math.round(before)} ms`);
  const mailroomMs = await mailroom(MESSAGES);
  progress(BENCH, `mailroom: ${MESSAGES} messages sent in ${Math.round(mailroomMs)} ms`);
  const after = await baseline(MESSAGES, sample);
  const baselineMs = (before + after) / 2;
  emit(
    compare(
      BENCH,
      'throughput',
      'msg/s',
      (MESSAGES / mailroomMs) * 1000,
      (MESSAGES / baselineMs) * 1000,
      { ratioAtLeast: 0.7 },
      {
        messages: MESSAGES,
        mailroomMs: Math.round(mailroomMs),
        baselineMs: Math.round(baselineMs),
        baselineRunsMs: `${Math.round(before)} ${Math.round(after)}`,
        messageBytes: sample.length,
      },
    ),
  );

  /** `count` messages through the API; ms from the first POST until the fake Graph has them all. */
  async function mailroom(count: number): Promise<number> {
    graph.sent.length = 0;
    const started = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let n = next++; n < count; n = next++) {
        const res = await app.inject({
          method: 'POST',
          url,
          headers: { authorization: 'Bearer bench-admin' },
          payload: { to: ['customer@example.net'], subject: `Graph ${n}`, text: TEXT },
        });
        if (res.statusCode !== 202) throw new Error(`send API answered ${res.statusCode}: ${res.body}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => void (graph.sent.length >= count ? resolve() : setTimeout(check, 5));
        check();
      }),
      10 * 60_000,
      `sending ${count} messages`,
    );
    return performance.now() - started;
  }

  /** `count` bare sendMail calls, one at a time; elapsed ms. */
  async function baseline(count: number, raw: Buffer): Promise<number> {
    const body = raw.toString('base64');
    const started = performance.now();
    for (let n = 0; n < count; n++) {
      await new Promise<void>((resolve, reject) => {
        const req = request(
          `${graph.url}/v1.0/users/${USER}/sendMail`,
          { method: 'POST', agent, headers: { authorization: 'Bearer bench', 'content-type': 'text/plain' } },
          (res) => {
            res.resume();
            res.on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`${res.statusCode}`))));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    }
    const elapsed = performance.now() - started;
    graph.sent.length = 0;
    return elapsed;
  }
});
