/**
 * Retention while ingest runs. A tenant holds BENCH_RETENTION_MESSAGES stored messages (default
 * 20,000; the figure is 200,000) with sources of 1 KB to 200 KB (log-uniform: most mail is
 * small) in PostgreSQL, half of them older than the tenant's `messageDays` (365). Three Dovecot
 * mailboxes hold BENCH_RETENTION_INGEST new messages each (default a twentieth of the stored
 * ones: about as long to ingest as the old half takes to delete). In the same run, same database:
 *   0. a warm-up ingest of a first mailbox (not measured);
 *   1. ingest alone: a second mailbox, from start() until every message is routed;
 *   2. ingest during retention: a third mailbox likewise, the retention job started with it.
 * Lines: `ingest-during-retention` (msg/s during deletion against ingest alone, target ratio >= 0.8),
 * `deletion-rate` (msg/s of the retention run; no baseline: the line's baseline is 0), and
 * `ingest-latency-p50` / `-p99`: ingest's latency, append to routed of single messages appended one
 * after another to a fourth mailbox while the deletion goes on, against at rest (no target).
 * `details.overlap` < 1 says the deletion ended before the ingest (the ratio is then optimistic:
 * raise BENCH_RETENTION_MESSAGES or lower BENCH_RETENTION_INGEST).
 */
import { performance } from 'node:perf_hooks';
import { createAccounts } from '../src/accounts/index.js';
import { CredentialService } from '../src/auth/credentials.js';
import { createInbound, type Inbound } from '../src/inbound/index.js';
import { RetentionJob } from '../src/lifecycle/retention-job.js';
import { addCleanup } from '../test/support/cleanup.js';
import { quietLogger } from '../test/support/database.js';
import { rawMail } from '../test/support/mail.js';
import {
  PASSWORD,
  appendMessages,
  imapClient,
  prepareMailroom,
  runBench,
  startBenchDovecot,
  within,
} from './support/environment.js';
import { compare, emit, progress } from './support/report.js';

const BENCH = 'retention';
const STORED = Number(process.env.BENCH_RETENTION_MESSAGES ?? 20_000);
const INGEST = Number(process.env.BENCH_RETENTION_INGEST ?? Math.max(200, Math.round(STORED / 20)));
/** [200] largest stored source, KB (the smallest is 1 KB). */
const MAX_KB = Number(process.env.BENCH_RETENTION_MAX_KB ?? 200);
/** [2000] messages seeded per statement. */
const SEED_CHUNK = 2_000;
/** A warm-up mailbox (JIT, connections: not measured), then one per measured phase. */
const USERS = ['warmup@bench.example', 'alone@bench.example', 'during@bench.example'];
/** A mailbox of single messages, appended one at a time: ingest's latency at rest and during the deletion. */
const PROBE = 'probe@bench.example';
/** [20] latency samples at rest (during the deletion: as many as it lasts). */
const PROBES_AT_REST = Number(process.env.BENCH_RETENTION_PROBES ?? 20);
/** [100] pause between one probe message routed and the next appended, ms. */
const PROBE_PAUSE_MS = 100;
const ROUTE_TIMEOUT_MS = 30 * 60_000;

runBench(BENCH, async () => {
  const dovecot = await startBenchDovecot([...USERS, PROBE]);
  // Each mailbox's mail is addressed to its user, the address of its destination.
  for (const user of USERS) {
    await appendMessages(dovecot, user, INGEST, (n) =>
      rawMail({ to: user, subject: `Ingest ${n}`, messageId: `${user}-${n}@bench.example` }),
    );
  }
  progress(BENCH, `appended ${INGEST} messages to each of ${USERS.length} mailboxes`);

  const mailroom = await prepareMailroom(dovecot, USERS[0] as string, USERS[0] as string);
  const { store, tenantId, serverId, destinationId } = mailroom;

  // The stored messages: half 400 days old, half a day old, each acknowledged (nothing waiting).
  const seeded = performance.now();
  for (let from = 1; from <= STORED; from += SEED_CHUNK) {
    const to = Math.min(STORED, from + SEED_CHUNK - 1);
    await store.query(
      `WITH sized AS (
         SELECT i, md5('stored' || i)::uuid AS id, (1024 * power($5::float8, random()))::int AS bytes
           FROM generate_series($3::int, $4::int) AS i),
       rows AS (
         INSERT INTO inbound_messages (id, tenant_id, server_id, mailbox, uid_validity, uid, status, message_id_header,
           dedupe_key, conversation_id, subject, from_address, from_name, recipients, received_at, ingested_at, size,
           classification, message_references, body_text, attachments, source_store, source_size)
         SELECT id, $1, $2, 'Archive', 1, i, 'routed', 's' || i || '@bench.example', 'stored:' || i, md5('c' || i)::uuid,
                'Stored ' || i, 'customer' || (i % 5000) || '@example.net', 'Customer',
                jsonb_build_object('to', jsonb_build_array(jsonb_build_object('address', 'alone@bench.example', 'name', '')),
                                   'cc', '[]'::jsonb, 'deliveredTo', '[]'::jsonb, 'xOriginalTo', '[]'::jsonb),
                now() - make_interval(days => CASE WHEN i % 2 = 0 THEN 400 ELSE 1 END),
                now() - make_interval(days => CASE WHEN i % 2 = 0 THEN 400 ELSE 1 END), bytes,
                '{"autoReply":false,"bounce":false,"loop":false,"reasons":[]}', '[]', 'Hello ' || i, '[]', 'postgres', bytes
           FROM sized RETURNING id, size)
       INSERT INTO inbound_raw (message_id, raw) SELECT id, convert_to(repeat('x', size), 'UTF8') FROM rows`,
      [tenantId, serverId, from, to, MAX_KB],
    );
    await store.query(
      `INSERT INTO inbound_deliveries (destination_id, seq, message_id, tenant_id, created_at, acked_at)
       SELECT $1, 1000000 + i, md5('stored' || i)::uuid, $2, now() - interval '400 days', now() - interval '399 days'
         FROM generate_series($3::int, $4::int) AS i`,
      [destinationId, tenantId, from, to],
    );
  }
  const [size] = await store.query<{ bytes: string }>('SELECT sum(source_size) AS bytes FROM inbound_messages');
  progress(
    BENCH,
    `seeded ${STORED} messages (${Math.round(Number(size?.bytes) / 1e6)} MB of sources) in ${Math.round(performance.now() - seeded)} ms`,
  );
  await store.query('ANALYZE');
  await store.lifecycle.setPolicy(tenantId, {
    rawSourceDays: null,
    messageBodyDays: null,
    messageDays: 365,
    outboundDays: null,
    logDays: null,
  });

  // A warm-up ingest, then each phase with a fresh inbound side watching the mailboxes so far
  // (the earlier ones have nothing new): both measured phases start alike.
  const { ms: warmUpMs } = await ingest(mailroom.inbound);
  await mailroom.inbound.stop();
  progress(BENCH, `warm-up: ${INGEST} in ${Math.round(warmUpMs)} ms`);
  const accounts = createAccounts(store, mailroom.sealer, quietLogger);
  const watch = async (user: string): Promise<string> => {
    const server = await accounts.servers.create(tenantId, {
      name: user,
      imap: {
        host: dovecot.host,
        port: dovecot.port,
        secure: false,
        user,
        auth: { method: 'password', password: PASSWORD },
      },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    });
    return (await accounts.destinations.create(tenantId, { name: user, address: user, serverId: server.id })).id;
  };
  const watching = async (user: string): Promise<Inbound> => {
    await watch(user);
    const side = createInbound({ store, credentials: new CredentialService(mailroom.sealer), logger: quietLogger });
    addCleanup(() => side.stop(), 'first');
    return side;
  };
  // Watched by both measured sides (one at a time).
  const probeDestination = await watch(PROBE);
  const prober = await imapClient(dovecot, PROBE);
  let probeSeq = 0;
  /** Append-to-routed latencies of single probe messages, one after another, while `more()` says so. */
  const probe = async (side: Inbound, more: (samples: number) => boolean): Promise<number[]> => {
    const latencies: number[] = [];
    while (more(latencies.length)) {
      const routed = new Promise<void>((resolve) => {
        const onRouted = (event: { destinationIds: string[] }): void => {
          if (!event.destinationIds.includes(probeDestination)) return;
          side.service.events.off('routed', onRouted);
          resolve();
        };
        side.service.events.on('routed', onRouted);
      });
      probeSeq += 1;
      const raw = rawMail({ to: PROBE, subject: `Probe ${probeSeq}`, messageId: `probe-${probeSeq}@bench.example` });
      const sent = performance.now();
      await prober.append('INBOX', raw);
      await within(routed, 60_000, `routing probe ${probeSeq}`);
      latencies.push(performance.now() - sent);
      await new Promise((resolve) => setTimeout(resolve, PROBE_PAUSE_MS));
    }
    return latencies;
  };

  // 1. Ingest alone.
  const first = await watching(USERS[1] as string);
  const { ms: aloneMs } = await ingest(first);
  const atRest = await probe(first, (n) => n < PROBES_AT_REST);
  await first.stop();
  progress(BENCH, `ingest alone: ${INGEST} in ${Math.round(aloneMs)} ms`);

  // 2. The third mailbox, with the retention job started at the same moment.
  const inbound = await watching(USERS[2] as string);
  const job = new RetentionJob({ store, logger: quietLogger, dropDeadLetter: async () => true });
  let retentionMs = 0;
  let deletion: Promise<Awaited<ReturnType<RetentionJob['runOnce']>>> | undefined;
  let deleting = true;
  const { ms: duringMs } = await ingest(inbound, () => {
    const start = performance.now();
    deletion = job.runOnce().then((report) => {
      retentionMs = performance.now() - start;
      deleting = false;
      return report;
    });
  });
  // Then ingest's latency for as long as the deletion goes on.
  const whileDeleting = await probe(inbound, () => deleting);
  const report = await deletion;
  if (!report) throw new Error('the retention job did not run (its lease is held elsewhere)');
  progress(
    BENCH,
    `during retention: ${INGEST} in ${Math.round(duringMs)} ms; retention deleted ${report.messages} in ${Math.round(retentionMs)} ms`,
  );
  const [left] = await store.query<{ n: string }>(
    `SELECT count(*) AS n FROM inbound_messages WHERE mailbox = 'Archive'`,
  );
  if (Number(left?.n) !== STORED - Math.floor(STORED / 2)) {
    throw new Error(`retention left ${left?.n} stored messages, expected ${STORED - Math.floor(STORED / 2)}`);
  }
  const details = {
    stored: STORED,
    deleted: report.messages,
    ingestedPerPhase: INGEST,
    maxKb: MAX_KB,
    sourceMb: Math.round(Number(size?.bytes) / 1e6),
    warmUpMs: Math.round(warmUpMs),
    aloneMs: Math.round(aloneMs),
    duringMs: Math.round(duringMs),
    retentionMs: Math.round(retentionMs),
    // Share of the ingest run the deletion lasted (1: all of it; less makes the ratio optimistic).
    overlap: Number(Math.min(1, retentionMs / duringMs).toFixed(2)),
  };
  emit(
    compare(
      BENCH,
      'ingest-during-retention',
      'msg/s',
      (INGEST / duringMs) * 1000,
      (INGEST / aloneMs) * 1000,
      { ratioAtLeast: 0.8 },
      details,
    ),
  );
  emit(compare(BENCH, 'deletion-rate', 'msg/s', (report.messages / retentionMs) * 1000, 0, null, details));
  // Ingest latency: single messages appended one after another, append to routed, while the
  // deletion goes on against at rest (the same inbound side's mailbox, Dovecot's IDLE notice included).
  for (const [metric, q] of [
    ['ingest-latency-p50', 0.5],
    ['ingest-latency-p99', 0.99],
  ] as const) {
    emit(
      compare(BENCH, metric, 'ms', quantile(whileDeleting, q), quantile(atRest, q), null, {
        samplesDeleting: whileDeleting.length,
        samplesAtRest: atRest.length,
        maxDeleting: quantile(whileDeleting, 1),
        maxAtRest: quantile(atRest, 1),
        stored: STORED,
      }),
    );
  }

  function quantile(xs: number[], q: number): number {
    const sorted = [...xs].sort((a, b) => a - b);
    return Number((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0).toFixed(1));
  }

  /** Starts `side` (and calls `onStart` just before); ms until INGEST messages are routed. */
  async function ingest(side: Inbound, onStart?: () => void): Promise<{ ms: number }> {
    let routed = 0;
    const done = new Promise<void>((resolve) => {
      side.service.events.on('routed', () => {
        routed += 1;
        if (routed === INGEST) resolve();
      });
    });
    const started = performance.now();
    onStart?.();
    await side.start();
    await within(done, ROUTE_TIMEOUT_MS, `routing ${INGEST} messages`);
    return { ms: performance.now() - started };
  }
});
