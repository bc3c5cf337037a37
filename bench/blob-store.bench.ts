/**
 * Ingest throughput with message sources in each backend: BENCH_BLOB_MESSAGES messages (default
 * 2,000) of about BENCH_BLOB_KB KB (default 20) in a Dovecot mailbox, routed by a fresh inbound
 * side over a fresh PostgreSQL database, with sources written to PostgreSQL (`inbound_raw`, in the
 * message's transaction: the baseline), to a directory (temp file, fsync, rename, folder fsync) and
 * to an S3-compatible server (fauxqs in a process of its own on 127.0.0.1), before the commit.
 * BENCH_BLOB_ROUNDS rounds (default 2) of the three, interleaved so that a shared machine's drift
 * touches each alike; the median per backend is reported. Lines `throughput-directory` and
 * `throughput-s3`: msg/s against PostgreSQL's in the same run (no target: a figure to watch).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DirectoryBackend } from '../src/store/sources/directory-backend.js';
import { MessageSources } from '../src/store/sources/message-sources.js';
import { S3Backend } from '../src/store/sources/s3-backend.js';
import type { BlobBackend, SourceKind } from '../src/store/sources/source-backend.js';
import { addCleanup } from '../test/support/cleanup.js';
import { rawMail } from '../test/support/mail.js';
import { appendMessages, prepareMailroom, runBench, startBenchDovecot, within } from './support/environment.js';
import { compare, emit, progress } from './support/report.js';

const BENCH = 'blob-store';
const MESSAGES = Number(process.env.BENCH_BLOB_MESSAGES ?? 2_000);
const KB = Number(process.env.BENCH_BLOB_KB ?? 20);
const ROUNDS = Number(process.env.BENCH_BLOB_ROUNDS ?? 2);
const USER = 'blobs@bench.example';
const ROUTE_TIMEOUT_MS = 15 * 60_000;
const KINDS: SourceKind[] = ['postgres', 'directory', 's3'];

/** Starts the emulator process; its endpoint. */
async function startEmulator(): Promise<string> {
  const script = fileURLToPath(new URL('./support/s3-emulator.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  addCleanup(async () => {
    child.kill('SIGTERM');
  });
  const [line] = await within(
    (async () => {
      for await (const l of createInterface({ input: child.stdout })) return [l];
      throw new Error('the S3 emulator exited before it listened');
    })(),
    30_000,
    'starting the S3 emulator',
  );
  return (line as string).trim();
}

runBench(BENCH, async () => {
  const dovecot = await startBenchDovecot([USER]);
  // A body of about KB kilobytes: lines of text, as a long mail has them.
  const body = Array.from({ length: Math.max(1, Math.round((KB * 1024) / 77)) }, (_, i) =>
    `line ${i} of a customer's long message, with some words to carry it to its length.`.slice(0, 76),
  ).join('\r\n');
  await appendMessages(dovecot, USER, MESSAGES, (n) =>
    rawMail({ to: USER, subject: `Blob ${n}`, messageId: `blob-${n}@bench.example`, body }),
  );
  progress(BENCH, `appended ${MESSAGES} messages of about ${KB} KB`);
  const endpoint = await startEmulator();
  const bucketMaker = new S3Backend({
    endpoint,
    bucket: 'mailroom-bench',
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    forcePathStyle: true,
  });
  await bucketMaker.ensureBucket();
  await bucketMaker.close();

  const times: Record<SourceKind, number[]> = { postgres: [], directory: [], s3: [] };
  for (let round = 0; round <= ROUNDS; round += 1) {
    for (const kind of KINDS) {
      const ms = await run(kind);
      // Round 0 warms each path up (JIT, connections); it is not counted.
      if (round > 0) times[kind].push(ms);
      progress(BENCH, `${round === 0 ? 'warm-up' : `round ${round}`}: ${kind} ${Math.round(ms)} ms`);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;
  const rate = (kind: SourceKind): number => (MESSAGES / median(times[kind])) * 1000;
  for (const kind of ['directory', 's3'] as const) {
    emit(
      compare(BENCH, `throughput-${kind}`, 'msg/s', rate(kind), rate('postgres'), null, {
        messages: MESSAGES,
        kb: KB,
        rounds: ROUNDS,
        roundMs: times[kind].map(Math.round).join(' '),
        postgresRoundMs: times.postgres.map(Math.round).join(' '),
      }),
    );
  }

  /** A fresh database, sources to `kind`; ms from start() until every message is routed. */
  async function run(kind: SourceKind): Promise<number> {
    const mailroom = await prepareMailroom(dovecot, USER, USER);
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-bench-blobs-'));
    const backends = new Map<Exclude<SourceKind, 'postgres'>, BlobBackend>();
    if (kind === 'directory') backends.set('directory', new DirectoryBackend(dir));
    if (kind === 's3') {
      backends.set(
        's3',
        new S3Backend({
          endpoint,
          bucket: 'mailroom-bench',
          region: 'us-east-1',
          credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
          forcePathStyle: true,
        }),
      );
    }
    await mailroom.store.useSources((query) => new MessageSources(kind, backends, query)).close();
    let routed = 0;
    const done = new Promise<void>((resolve) => {
      mailroom.inbound.service.events.on('routed', () => {
        routed += 1;
        if (routed === MESSAGES) resolve();
      });
    });
    const started = performance.now();
    await mailroom.inbound.start();
    await within(done, ROUTE_TIMEOUT_MS, `routing ${MESSAGES} messages (${kind})`);
    const elapsed = performance.now() - started;
    await mailroom.inbound.stop();
    const [row] = await mailroom.store.query<{ n: string }>(
      'SELECT count(*) AS n FROM inbound_messages WHERE source_store = $1',
      [kind],
    );
    if (Number(row?.n) !== MESSAGES) throw new Error(`${kind}: ${row?.n} sources stored, expected ${MESSAGES}`);
    await mailroom.store.sources.close();
    await rm(dir, { recursive: true, force: true });
    return elapsed;
  }
});
