/**
 * Outbound sending: 10,000 messages (BENCH_SEND_MESSAGES) through the send API (fastify `inject`,
 * the whole HTTP stack but the socket) into the disk spool with fsync on, delivered to the SMTP
 * harness. Prints JSON lines (bench/README.md):
 *
 * - throughput: first POST until the harness has every message (accepting and delivering at the
 *   same time), after an untimed warm-up of BASELINE_WARMUP messages, next to the baseline, in
 *   BENCH_SEND_ROUNDS (5) interleaved rounds: baseline, Mailroom, baseline, …, baseline. Each
 *   Mailroom run is compared with the mean of the baselines just before and after it, and the
 *   round with the median ratio is reported (every round is in `details`), as inbound-ingest does:
 *   on a shared machine the load changes within minutes. Target: ratio >= 0.7.
 * - drain: with the harness stopped, as many messages are accepted; the harness starts again and
 *   the spool drains (from start until the last message arrives), next to the same baseline. The
 *   engine is not restarted: messages it accepted itself are sent from the bytes it spooled (kept
 *   in memory up to 64 MiB), not read back from disk.
 *
 * The baseline is a bare pooled nodemailer transport (maxConnections 1, maxMessages Infinity)
 * handed all BENCH_SEND_MESSAGES `sendMail` calls at once (from, to, subject and the same text; it
 * composes each message itself, MailComposer streams included) to the same harness, which runs in
 * this process in both cases. It writes nothing to disk or to the database and has no HTTP in
 * front. It composes with the engine's header name cache in place (src/outbound/header-key-cache.ts
 * is installed for the whole process), which makes it faster, not slower, than nodemailer alone.
 * Each baseline run follows an untimed warm-up of BASELINE_WARMUP messages: a cold first run (code
 * not yet optimised by the JIT) ran at about half the speed of a warm one.
 * - accept latency p50 / p99 of the median throughput round (BENCH_SEND_CONCURRENCY requests in flight),
 *   next to the latency of a bare durable write of the same bytes (open exclusively, write, fsync,
 *   rename, fsync the folder), one at a time.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (MAILROOM_TEST_POSTGRES_URL); not Dovecot.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdtemp, open, rename, rm, unlink } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import nodemailer, { type Transporter } from 'nodemailer';
import pg from 'pg';
import { createAccounts } from '../src/accounts/index.js';
import { buildApi } from '../src/api/http-server.js';
import { CredentialService } from '../src/auth/credentials.js';
import { startSmtpHarness, type SmtpHarness } from '../src/harness/smtp-harness.js';
import { createInbound } from '../src/inbound/index.js';
import { OutboundService } from '../src/outbound/outbound-service.js';
import { SecretSealer } from '../src/shared/sealed-secrets.js';
import { Store } from '../src/store/store.js';
import { addCleanup, runCleanups } from '../test/support/cleanup.js';
import { POSTGRES_ADMIN_URL, createTestDatabase, quietLogger } from '../test/support/database.js';
import { createSendingAccount } from '../test/support/outbound-fixture.js';
import { within } from './support/environment.js';
import { machineCpuMeter } from './support/machine-cpu.js';
import { compare, emit, percentile, progress } from './support/report.js';

const BENCH = 'outbound-send';
const MESSAGES = Number(process.env.BENCH_SEND_MESSAGES ?? 10_000);
/** Send API requests in flight at a time. */
const CONCURRENCY = Number(process.env.BENCH_SEND_CONCURRENCY ?? 16);
/** Interleaved rounds of the throughput phase (baseline, Mailroom, baseline, …); the median is reported. */
const ROUNDS = Number(process.env.BENCH_SEND_ROUNDS ?? 5);
/** Longest wait for a phase, ms. */
const PHASE_TIMEOUT_MS = 10 * 60_000;
/** Messages the baseline sends untimed before each measurement (JIT warm-up). */
const BASELINE_WARMUP = 1_000;
/** Bare durable writes measured for the latency baseline. */
const LATENCY_BASELINE_WRITES = 1_000;
const TEXT = 'Hello,\n\nthank you for your message. We are looking into it.\n\nACME Support\n'.repeat(4);

async function missingRequirement(): Promise<string | null> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    return null;
  } catch (err) {
    return `PostgreSQL not reachable at ${POSTGRES_ADMIN_URL}: ${(err as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

interface CpuFigures {
  mainUsPerMsg: number;
  processUsPerMsg: number;
  /** Cores the whole machine kept busy meanwhile (PostgreSQL and the kernel included). */
  machineCores: number | null;
}

/** CPU spent from now on, µs per message: the event loop's busy time (main thread) and the whole process's. */
function cpuMeter(): (messages: number) => CpuFigures {
  const loop = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const machine = machineCpuMeter(availableParallelism());
  return (messages) => {
    const busy = performance.eventLoopUtilization(loop).active * 1000;
    const used = process.cpuUsage(cpu);
    return {
      mainUsPerMsg: Math.round(busy / messages),
      processUsPerMsg: Math.round((used.user + used.system) / messages),
      machineCores: machine(),
    };
  };
}

/** A bare pooled nodemailer transport to the harness, one connection, as the baselines use it. */
function bareTransport(smtp: SmtpHarness): Transporter {
  return nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: false,
    pool: true,
    maxConnections: 1,
    maxMessages: Infinity,
    logger: false,
  });
}

/** Writes `data` durably as `dir/name`: opened exclusively under a temporary name, fsynced, renamed, the folder fsynced. */
async function durableWrite(dir: string, name: string, data: Buffer): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const handle = await open(tmp, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, join(dir, name));
  const folder = await open(dir, constants.O_RDONLY);
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/** Bare pooled nodemailer, one connection: the baseline throughput, msg/s (after an untimed warm-up). */
async function baselineThroughput(smtp: SmtpHarness): Promise<{ rate: number } & CpuFigures> {
  const transport = bareTransport(smtp);
  const sendMany = (count: number): Promise<unknown> =>
    Promise.all(
      Array.from({ length: count }, (_, n) =>
        transport.sendMail({
          from: '"ACME Support" <support@bench.example>',
          to: 'customer@example.net',
          subject: `Baseline ${n}`,
          text: TEXT,
        }),
      ),
    );
  try {
    await sendMany(BASELINE_WARMUP);
    const t = performance.now();
    const meter = cpuMeter();
    await sendMany(MESSAGES);
    return { rate: MESSAGES / ((performance.now() - t) / 1000), ...meter(MESSAGES) };
  } finally {
    transport.close();
    smtp.messages.length = 0;
  }
}

/**
 * The same sends as {@link baselineThroughput}, each one first made durable as the spool must
 * (a file opened exclusively, written, fsynced, renamed, its folder fsynced), CONCURRENCY at a
 * time, and the file deleted after the 250: a plain design that keeps one durable file per message
 * (without the spool's shared folder fsyncs and recycled files), with no HTTP, no validation and no
 * database. A reference for the throughput figure, with no target; msg/s after an untimed warm-up.
 */
async function durableBaselineThroughput(smtp: SmtpHarness, dir: string): Promise<number> {
  const transport = bareTransport(smtp);
  const data = randomBytes(1_200);
  const sendMany = async (label: string, count: number): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let n = next++; n < count; n = next++) {
        await durableWrite(dir, `${label}-${n}.msg`, data);
        await transport.sendMail({
          from: '"ACME Support" <support@bench.example>',
          to: 'customer@example.net',
          subject: `Durable ${n}`,
          text: TEXT,
        });
        await unlink(join(dir, `${label}-${n}.msg`));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  };
  try {
    await sendMany('warm-up', BASELINE_WARMUP);
    const t = performance.now();
    await sendMany('timed', MESSAGES);
    return MESSAGES / ((performance.now() - t) / 1000);
  } finally {
    transport.close();
    smtp.messages.length = 0;
  }
}

/** One-at-a-time durable writes of a message-sized file: the floor of an accept, ms each. */
async function bareDurableWrites(dir: string, bytes: number): Promise<number[]> {
  const data = randomBytes(bytes);
  const samples: number[] = [];
  for (let n = 0; n < LATENCY_BASELINE_WRITES; n += 1) {
    const t = performance.now();
    await durableWrite(dir, `${n}.msg`, data);
    samples.push(performance.now() - t);
  }
  return samples;
}

async function main(): Promise<void> {
  const smtp = await startSmtpHarness();
  addCleanup(() => smtp.close());

  progress(BENCH, `baseline: bare pooled nodemailer, ${MESSAGES} messages`);
  const before = await baselineThroughput(smtp);
  progress(BENCH, `baseline: ${before.rate.toFixed(1)} msg/s`);
  smtp.messages.length = 0;

  const databaseUrl = await createTestDatabase();
  const store = await Store.open({ databaseUrl }, quietLogger);
  addCleanup(() => store.close(), 'first');
  const spoolDir = await mkdtemp(join(tmpdir(), 'mailroom-bench-spool-'));
  addCleanup(() => rm(spoolDir, { recursive: true, force: true }));
  const sealer = new SecretSealer(randomBytes(32));
  const accounts = createAccounts(store, sealer, quietLogger);
  const credentials = new CredentialService(sealer);
  const outbound = new OutboundService({
    store,
    credentials,
    logger: quietLogger,
    spoolDir,
    instanceId: 'bench',
    // fsync stays on (the default); a quick probe so that the drain starts soon after the outage.
    options: { probeIntervalMs: 100, heartbeatIntervalMs: 0 },
  });
  const inbound = createInbound({ store, credentials, logger: quietLogger });
  const adminToken = randomBytes(16).toString('hex');
  const app = await buildApi({ accounts, store, inbound, outbound, logger: quietLogger, adminToken });
  addCleanup(() => app.close(), 'first');
  addCleanup(() => outbound.stop(), 'first');

  const { tenantId, serverId, destinationId } = await createSendingAccount(accounts, {
    tenant: 'Bench',
    address: 'support@bench.example',
    fromText: 'ACME Support',
    relayPort: smtp.port,
  });
  const url = `/api/v1/tenants/${tenantId}/destinations/${destinationId}/outbound`;
  await outbound.start();

  /** Sends `count` messages through the API, CONCURRENCY at a time; returns each request's latency, ms. */
  async function sendAll(label: string, count = MESSAGES): Promise<number[]> {
    const latencies: number[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let n = next++; n < count; n = next++) {
        const t = performance.now();
        const res = await app.inject({
          method: 'POST',
          url,
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
          payload: JSON.stringify({ to: ['customer@example.net'], subject: `${label} ${n}`, text: TEXT }),
        });
        latencies.push(performance.now() - t);
        if (res.statusCode !== 202) throw new Error(`POST answered ${res.statusCode}: ${res.body}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    return latencies;
  }

  // The same untimed warm-up as the baseline's, delivered before the clock starts.
  await sendAll('Warm-up', BASELINE_WARMUP);
  await within(smtp.waitFor(BASELINE_WARMUP, PHASE_TIMEOUT_MS), PHASE_TIMEOUT_MS, 'warm-up');
  smtp.messages.length = 0;

  // Interleaved rounds (baseline, Mailroom, baseline, …, baseline), as inbound-ingest does: each
  // Mailroom run is compared with the mean of the baselines just before and after it, so that
  // drift of a shared machine affects both sides alike; the round with the median ratio is
  // reported, every round is in `details`.
  const baselineRuns = [before];
  const rounds: Array<{
    throughput: number;
    baseline: number;
    ratio: number;
    mailroomMs: number;
    acceptedMs: number;
    latencies: number[];
    cpu: CpuFigures;
    baselineCpu: CpuFigures;
    baselineBefore: number;
    baselineAfter: number;
  }> = [];
  for (let r = 1; r <= ROUNDS; r += 1) {
    progress(BENCH, `round ${r}: mailroom, ${MESSAGES} messages through the send API, ${CONCURRENCY} in flight`);
    const t = performance.now();
    const meter = cpuMeter();
    const latencies = await sendAll(`Round ${r}`);
    const acceptedMs = performance.now() - t;
    await within(smtp.waitFor(MESSAGES, PHASE_TIMEOUT_MS), PHASE_TIMEOUT_MS, 'delivery');
    const mailroomMs = performance.now() - t;
    const cpu = meter(MESSAGES);
    const throughput = MESSAGES / (mailroomMs / 1000);
    smtp.messages.length = 0;
    const previous = baselineRuns.at(-1) as (typeof baselineRuns)[0];
    const next = await baselineThroughput(smtp);
    baselineRuns.push(next);
    smtp.messages.length = 0;
    const baseline = (previous.rate + next.rate) / 2;
    rounds.push({
      throughput,
      baseline,
      ratio: throughput / baseline,
      mailroomMs,
      acceptedMs,
      latencies,
      cpu,
      baselineCpu: {
        mainUsPerMsg: Math.round((previous.mainUsPerMsg + next.mainUsPerMsg) / 2),
        processUsPerMsg: Math.round((previous.processUsPerMsg + next.processUsPerMsg) / 2),
        machineCores:
          previous.machineCores === null || next.machineCores === null
            ? null
            : Math.round(((previous.machineCores + next.machineCores) / 2) * 100) / 100,
      },
      baselineBefore: previous.rate,
      baselineAfter: next.rate,
    });
    progress(
      BENCH,
      `round ${r}: mailroom ${throughput.toFixed(1)} msg/s (all accepted after ${Math.round(acceptedMs)} ms), ` +
        `baseline after ${next.rate.toFixed(1)} msg/s, ratio ${(throughput / baseline).toFixed(3)}`,
    );
  }
  const median = [...rounds].sort((a, b) => a.ratio - b.ratio)[
    Math.floor((rounds.length - 1) / 2)
  ] as (typeof rounds)[0];
  const { throughput, baseline, latencies } = median;
  const baselineDetails = {
    baselineBefore: Math.round(median.baselineBefore * 10) / 10,
    baselineAfter: Math.round(median.baselineAfter * 10) / 10,
  };
  const durableDir = await mkdtemp(join(tmpdir(), 'mailroom-bench-durable-'));
  addCleanup(() => rm(durableDir, { recursive: true, force: true }));
  progress(BENCH, `reference: bare pooled nodemailer with a durable file per message, ${CONCURRENCY} at a time`);
  const durable = await durableBaselineThroughput(smtp, durableDir);
  progress(BENCH, `reference: ${durable.toFixed(1)} msg/s`);
  emit(
    compare(
      BENCH,
      'throughput',
      'msg/s',
      throughput,
      baseline,
      { ratioAtLeast: 0.7 },
      {
        messages: MESSAGES,
        concurrency: CONCURRENCY,
        fsync: 'on',
        rounds: ROUNDS,
        mailroomMs: Math.round(median.mailroomMs),
        acceptedMs: Math.round(median.acceptedMs),
        ...baselineDetails,
        roundRatios: rounds.map((x) => x.ratio.toFixed(3)).join(' '),
        roundThroughputs: rounds.map((x) => x.throughput.toFixed(1)).join(' '),
        baselineRuns: baselineRuns.map((x) => x.rate.toFixed(1)).join(' '),
        // CPU per message (where the time goes; steadier than the rates on a shared machine).
        mainThreadUsPerMsg: median.cpu.mainUsPerMsg,
        processCpuUsPerMsg: median.cpu.processUsPerMsg,
        baselineMainThreadUsPerMsg: median.baselineCpu.mainUsPerMsg,
        baselineProcessCpuUsPerMsg: median.baselineCpu.processUsPerMsg,
        // Cores the whole machine kept busy (PostgreSQL, the kernel's file system work and
        // libuv's threads included), of availableParallelism().
        machineCores: median.cpu.machineCores ?? 'unknown',
        baselineMachineCores: median.baselineCpu.machineCores ?? 'unknown',
        cores: availableParallelism(),
      },
    ),
  );
  // The same figure next to the durable reference (no target): the engine against a plain design
  // that keeps one durable file per message.
  emit(
    compare(BENCH, 'throughput-vs-durable-sends', 'msg/s', throughput, durable, null, {
      messages: MESSAGES,
      concurrency: CONCURRENCY,
      fsync: 'on',
    }),
  );

  const bytes = 1_200; // about one composed message with its spool header
  const bareDir = await mkdtemp(join(tmpdir(), 'mailroom-bench-bare-'));
  addCleanup(() => rm(bareDir, { recursive: true, force: true }));
  const bare = await bareDurableWrites(bareDir, bytes);
  for (const p of [50, 99]) {
    emit(
      compare(BENCH, `accept-latency-p${p}`, 'ms', percentile(latencies, p), percentile(bare, p), null, {
        requests: latencies.length,
        concurrency: CONCURRENCY,
        baselineWrites: bare.length,
        baselineBytes: bytes,
      }),
    );
  }

  progress(BENCH, `drain: relay stopped, ${MESSAGES} messages accepted into the spool`);
  smtp.messages.length = 0;
  await smtp.stop();
  const acceptStarted = performance.now();
  await sendAll('Drain');
  const acceptOnlyMs = performance.now() - acceptStarted;
  progress(BENCH, `accepted ${MESSAGES} with the relay stopped in ${Math.round(acceptOnlyMs)} ms`);
  const spooled = (await outbound.spool.list(serverId)).length;
  if (spooled !== MESSAGES) throw new Error(`expected ${MESSAGES} spooled messages, found ${spooled}`);
  const t = performance.now();
  await smtp.start();
  await within(smtp.waitFor(MESSAGES, PHASE_TIMEOUT_MS), PHASE_TIMEOUT_MS, 'drain');
  const drainMs = performance.now() - t;
  const drain = MESSAGES / (drainMs / 1000);
  progress(BENCH, `drain: ${drain.toFixed(1)} msg/s`);
  emit(
    compare(BENCH, 'drain', 'msg/s', drain, baseline, null, {
      messages: MESSAGES,
      drainMs: Math.round(drainMs),
      // Accepting alone (nothing delivered meanwhile), for where the time of the throughput run goes.
      acceptOnlyMs: Math.round(acceptOnlyMs),
      probeIntervalMs: 100,
      ...baselineDetails,
    }),
  );
}

void (async () => {
  let code = 0;
  try {
    const missing = await missingRequirement();
    if (missing) emit({ bench: BENCH, skipped: missing });
    else await main();
  } catch (err) {
    progress(BENCH, `failed: ${(err as Error).stack ?? String(err)}`);
    code = 1;
  } finally {
    await runCleanups();
  }
  process.exitCode = code;
  setTimeout(() => process.exit(code), 5_000).unref();
})();
