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
const USER = 'ingest@bench.example';
const ADDRESS = 'support@bench.example';
/** Longest wait for Mailroom to route everything, ms. */
const ROUTE_TIMEOUT_MS = 15 * 60_000;

runBench(BENCH, async () => {
  const dovecot = await startBenchDovecot([USER]);
  let t = performance.now();
  await appendMessages(dovecot, USER, MESSAGES, (n) =>
    rawMail({ to: ADDRESS, subject: `Ingest ${n}`, messageId: `ingest-${n}@bench.example` }),
  );
  progress(BENCH, `appended ${MESSAGES} messages in ${Math.round(performance.now() - t)} ms`);

  const baselineBeforeMs = await baseline();
  progress(BENCH, `baseline before: ${MESSAGES} fetched and parsed in ${Math.round(baselineBeforeMs)} ms`);

  const mailroom = await prepareMailroom(dovecot, USER, ADDRESS);
  let routed = 0;
  const allRouted = new Promise<void>((resolve) => {
    mailroom.inbound.service.events.on('routed', () => {
      routed += 1;
      if (routed === MESSAGES) resolve();
    });
  });
  t = performance.now();
  await mailroom.inbound.start();
  await within(allRouted, ROUTE_TIMEOUT_MS, `routing ${MESSAGES} messages`);
  const mailroomMs = performance.now() - t;
  progress(BENCH, `mailroom: ${MESSAGES} routed in ${Math.round(mailroomMs)} ms`);

  const [row] = await mailroom.store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_deliveries');
  if (Number(row?.n) !== MESSAGES) throw new Error(`expected ${MESSAGES} deliveries, found ${row?.n}`);

  // Measured again once everything has run: the first baseline pays the JIT warm-up of imapflow
  // and mailparser, which Mailroom (using both) then gets for free; the mean is the baseline.
  const baselineAfterMs = await baseline();
  progress(BENCH, `baseline after: ${Math.round(baselineAfterMs)} ms`);
  const baselineMs = (baselineBeforeMs + baselineAfterMs) / 2;

  emit(
    compare(
      BENCH,
      'throughput',
      'msg/s',
      (MESSAGES / mailroomMs) * 1000,
      (MESSAGES / baselineMs) * 1000,
      {
        ratioAtLeast: 0.8,
      },
      {
        messages: MESSAGES,
        mailroomMs: Math.round(mailroomMs),
        baselineMs: Math.round(baselineMs),
        baselineBeforeMs: Math.round(baselineBeforeMs),
        baselineAfterMs: Math.round(baselineAfterMs),
      },
    ),
  );

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
