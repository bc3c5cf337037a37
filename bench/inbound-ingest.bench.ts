/**
 * Inbound ingestion throughput: 10,000 small messages in a private Dovecot mailbox.
 * Baseline: a bare imapflow `UID FETCH 1:*` of full sources with mailparser's simpleParser on each.
 * Mailroom: createInbound with default options over a fresh PostgreSQL database, from start()
 * until every message is routed (stored, delivered to its destination, checkpointed).
 * Both read the same mailbox: the baseline only peeks, and Mailroom's post-processing sets \Seen.
 */
import { performance } from 'node:perf_hooks';
import { simpleParser } from 'mailparser';
import { rawMail } from '../test/support/mail.js';
import {
  appendMessages,
  imapClient,
  prepareMailroom,
  runBench,
  startBenchDovecot,
  within,
} from './support/environment.js';
import { compare, emit, progress } from './support/report.js';

const BENCH = 'inbound-ingest';
const MESSAGES = Number(process.env.BENCH_INGEST_MESSAGES ?? 10_000);
/** Mailroom runs, each between two baseline runs. */
const ROUNDS = Number(process.env.BENCH_INGEST_ROUNDS ?? 5);
const USER = 'ingest@bench.example';
const ADDRESS = 'support@bench.example';
/**
 * Indexes to drop from each fresh database before Mailroom's run (comma-separated names), to
 * measure what they cost at ingest: e.g. the trace search's of migration 0041 (bench/README.md).
 */
const DROP_INDEXES = (process.env.BENCH_INGEST_DROP_INDEXES ?? '')
  .split(',')
  .map((name) => name.trim())
  .filter((name) => /^[a-z0-9_]+$/.test(name));
/** Longest wait for Mailroom to route everything, ms. */
const ROUTE_TIMEOUT_MS = 15 * 60_000;

runBench(BENCH, async () => {
  const dovecot = await startBenchDovecot([USER]);
  const t = performance.now();
  await appendMessages(dovecot, USER, MESSAGES, (n) =>
    rawMail({ to: ADDRESS, subject: `Ingest ${n}`, messageId: `ingest-${n}@bench.example` }),
  );
  progress(BENCH, `appended ${MESSAGES} messages in ${Math.round(performance.now() - t)} ms`);

  // One unmeasured run of each first: the first run in the process pays the JIT warm-up of the
  // code it uses (imapflow and mailparser are shared, so whichever ran second would get theirs
  // free). Then interleaved rounds (baseline, Mailroom, baseline, …, baseline): each Mailroom
  // run is compared with the mean of the baselines just before and after it, so that drift of a
  // shared machine affects both sides alike. The round with the median ratio is reported; every
  // round is in `details`.
  const warmUp = { baselineMs: await baseline(), mailroomMs: await mailroomRun() };
  progress(
    BENCH,
    `warm-up: baseline ${Math.round(warmUp.baselineMs)} ms, mailroom ${Math.round(warmUp.mailroomMs)} ms`,
  );
  const baselines = [await baseline()];
  progress(BENCH, `baseline: ${MESSAGES} fetched and parsed in ${Math.round(baselines[0] as number)} ms`);
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
        ...(DROP_INDEXES.length > 0 && { droppedIndexes: DROP_INDEXES.join(' ') }),
        mailroomMs: Math.round(median.mailroomMs),
        baselineMs: Math.round(median.baselineMs),
        roundRatios: rounds.map((x) => x.ratio.toFixed(3)).join(' '),
        roundMailroomMs: rounds.map((x) => Math.round(x.mailroomMs)).join(' '),
        baselineRunsMs: baselines.map((ms) => Math.round(ms)).join(' '),
        warmUpBaselineMs: Math.round(warmUp.baselineMs),
        warmUpMailroomMs: Math.round(warmUp.mailroomMs),
      },
    ),
  );

  /** A fresh database and inbound side; ms from start() until every message is routed. */
  async function mailroomRun(): Promise<number> {
    const mailroom = await prepareMailroom(dovecot, USER, ADDRESS);
    for (const name of DROP_INDEXES) await mailroom.store.query(`DROP INDEX ${name}`);
    let routed = 0;
    const allRouted = new Promise<void>((resolve) => {
      mailroom.inbound.service.events.on('routed', () => {
        routed += 1;
        if (routed === MESSAGES) resolve();
      });
    });
    const started = performance.now();
    await mailroom.inbound.start();
    await within(allRouted, ROUTE_TIMEOUT_MS, `routing ${MESSAGES} messages`);
    const elapsed = performance.now() - started;
    await mailroom.inbound.stop();
    const [row] = await mailroom.store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_deliveries');
    if (Number(row?.n) !== MESSAGES) throw new Error(`expected ${MESSAGES} deliveries, found ${row?.n}`);
    return elapsed;
  }

  /** Connect, select, fetch every full source and parse each one; elapsed ms. */
  async function baseline(): Promise<number> {
    const started = performance.now();
    const client = await imapClient(dovecot, USER);
    await client.mailboxOpen('INBOX');
    let parsed = 0;
    for await (const m of client.fetch('1:*', { uid: true, source: true }, { uid: true })) {
      if (!m.source) throw new Error(`UID ${m.uid} came without a source`);
      await simpleParser(m.source);
      parsed += 1;
    }
    const elapsed = performance.now() - started;
    await client.logout();
    if (parsed !== MESSAGES) throw new Error(`baseline parsed ${parsed} messages, expected ${MESSAGES}`);
    return elapsed;
  }
});
