/**
 * Inbound ingestion through Microsoft Graph: 10,000 small messages in the fake Graph's Inbox.
 * Baseline: a bare HTTPS client (keep-alive) doing the same requests: the delta round (pages of
 * 100 ids), every `$value` (8 in flight, as Mailroom), and mailparser's simpleParser on each.
 * Mailroom: createInbound over a fresh PostgreSQL database with one `protocol: graph` server, from
 * start() until every message is routed (stored, delivered, the delta link committed). Mailroom
 * also marks each message read (its default post-processing, one PATCH each); the baseline does not.
 */
import { request, Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { createAccounts } from '../src/accounts/index.js';
import { startFakeGraph, type FakeGraph } from '../src/harness/fake-graph/index.js';
import { createInbound } from '../src/inbound/index.js';
import { SecretSealer } from '../src/shared/sealed-secrets.js';
import { mapLimited } from '../src/shared/map-limited.js';
import { Store } from '../src/store/store.js';
import { addCleanup } from '../test/support/cleanup.js';
import { createTestDatabase, quietLogger } from '../test/support/database.js';
import { rawMail } from '../test/support/mail.js';
import { runBench, within } from './support/environment.js';
import { graphCaFile, graphCredentials, graphServerInput } from './support/graph.js';
import { compare, emit, progress } from './support/report.js';

const BENCH = 'graph-ingest';
const MESSAGES = Number(process.env.BENCH_INGEST_MESSAGES ?? 10_000);
const ROUNDS = Number(process.env.BENCH_INGEST_ROUNDS ?? 3);
const USER = 'ingest@bench.example';
const ADDRESS = 'support@bench.example';
const ROUTE_TIMEOUT_MS = 15 * 60_000;
const PAGE = 100;
const IN_FLIGHT = 8;

runBench(BENCH, async () => {
  const graph: FakeGraph = await startFakeGraph({ users: [USER] });
  addCleanup(() => graph.close());
  for (let n = 0; n < MESSAGES; n++) {
    graph.deliver(USER, rawMail({ to: ADDRESS, subject: `Ingest ${n}`, messageId: `graph-ingest-${n}@bench.example` }));
  }
  const { caDir, caFile } = await graphCaFile(graph);
  const agent = new Agent({ keepAlive: true, ca: graph.ca, maxSockets: IN_FLIGHT });
  addCleanup(async () => agent.destroy());

  const warmUp = { baselineMs: await baseline(), mailroomMs: await mailroomRun() };
  progress(
    BENCH,
    `warm-up: baseline ${Math.round(warmUp.baselineMs)} ms, mailroom ${Math.round(warmUp.mailroomMs)} ms`,
  );
  const baselines = [await baseline()];
  const rounds: Array<{ mailroomMs: number; baselineMs: number; ratio: number }> = [];
  for (let r = 1; r <= ROUNDS; r += 1) {
    const mailroomMs = await mailroomRun();
    const after = await baseline();
    const baselineMs = ((baselines.at(-1) as number) + after) / 2;
    baselines.push(after);
    rounds.push({ mailroomMs, baselineMs, ratio: baselineMs / mailroomMs });
    progress(BENCH, `round ${r}: mailroom ${Math.round(mailroomMs)} ms, baseline after ${Math.round(after)} ms`);
  }
  const median = [...rounds].sort((a, b) => a.ratio - b.ratio)[
    Math.floor((rounds.length - 1) / 2)
  ] as (typeof rounds)[0];
  emit(
    compare(
      BENCH,
      'throughput',
      'msg/s',
      (MESSAGES / median.mailroomMs) * 1000,
      (MESSAGES / median.baselineMs) * 1000,
      { ratioAtLeast: 0.8 },
      {
        messages: MESSAGES,
        rounds: ROUNDS,
        mailroomMs: Math.round(median.mailroomMs),
        baselineMs: Math.round(median.baselineMs),
        roundRatios: rounds.map((x) => x.ratio.toFixed(3)).join(' '),
        warmUpBaselineMs: Math.round(warmUp.baselineMs),
        warmUpMailroomMs: Math.round(warmUp.mailroomMs),
      },
    ),
  );

  function get(path: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const req = request(
        `${graph.url}${path}`,
        { agent, headers: { authorization: 'Bearer bench', prefer: `odata.maxpagesize=${PAGE}` } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${res.statusCode}`)),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  /** The delta round, every source, every parse; elapsed ms. */
  async function baseline(): Promise<number> {
    const started = performance.now();
    let link: string | null = `/v1.0/users/${USER}/mailFolders/inbox/messages/delta?$select=id,receivedDateTime`;
    let parsed = 0;
    while (link !== null) {
      const page = JSON.parse((await get(link)).toString('utf8')) as {
        value: Array<{ id: string }>;
        '@odata.nextLink'?: string;
      };
      await mapLimited(page.value, IN_FLIGHT, async (m) => {
        await simpleParser(await get(`/v1.0/users/${USER}/messages/${m.id}/$value`));
        parsed += 1;
      });
      const next = page['@odata.nextLink'];
      link = next === undefined ? null : new URL(next).pathname + new URL(next).search;
    }
    if (parsed !== MESSAGES) throw new Error(`baseline parsed ${parsed} messages, expected ${MESSAGES}`);
    return performance.now() - started;
  }

  /** A fresh database and inbound side with one Graph server; ms from start() until every message is routed. */
  async function mailroomRun(): Promise<number> {
    const store = await Store.open({ databaseUrl: await createTestDatabase() }, quietLogger);
    const sealer = new SecretSealer(randomBytes(32));
    const accounts = createAccounts(store, sealer, quietLogger, { caDir });
    const tenant = await accounts.tenants.create({ name: 'Bench' });
    const server = await accounts.servers.create(tenant.id, graphServerInput(graph, USER, caFile));
    await accounts.destinations.create(tenant.id, { name: ADDRESS, address: ADDRESS, serverId: server.id });
    const credentials = graphCredentials(sealer, USER);
    const inbound = createInbound({ store, credentials, logger: quietLogger });
    let routed = 0;
    const allRouted = new Promise<void>((resolve) => {
      inbound.service.events.on('routed', () => {
        routed += 1;
        if (routed === MESSAGES) resolve();
      });
    });
    const started = performance.now();
    await inbound.start();
    await within(allRouted, ROUTE_TIMEOUT_MS, `routing ${MESSAGES} messages`);
    const elapsed = performance.now() - started;
    await inbound.stop();
    const [row] = await store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_deliveries');
    await store.close();
    if (Number(row?.n) !== MESSAGES) throw new Error(`expected ${MESSAGES} deliveries, found ${row?.n}`);
    return elapsed;
  }
});
