/**
 * Ingest throughput with message sources in each backend: BENCH_BLOB_MESSAGES messages (default
 * 2,000) of about BENCH_BLOB_KB KB (default 20) in a Dovecot mailbox, routed by a fresh inbound
 * side over a fresh PostgreSQL database, with sources written to PostgreSQL (`inbound_raw`, in the
 * message's transaction: the baseline), to a directory (temp file, fsync, rename, folder fsync) and
 * to an S3-compatible server (fauxqs in a process of its own on 127.0.0.1), before the commit.
 * BENCH_BLOB_ROUNDS rounds (default 2) of the three, interleaved so that a shared machine's drift
 * touches each alike; the median per backend is reported. Lines `throughput-directory` and
 * `throughput-s3`: msg/s against PostgreSQL's in the same run (no target: a figure to watch).
 * Each backend already holds BENCH_BLOB_STORED sources (default 200,000, the issue's size) of
 * BENCH_BLOB_STORED_KB KB (default 1: the count is what a folder, a bucket or a table's index
 * feels; 200,000 × 20 KB would not fit the emulator's memory), seeded directly rather than
 * ingested (ingest at ~400 msg/s would take the run's hours): files written without fsync, objects
 * PUT 32 at a time, rows and PostgreSQL sources by SQL into each run's fresh database. The
 * directory's files are moved into the run's tenant folder, so new sources join a folder of that
 * many; the bucket's are another tenant's keys in the same bucket.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DirectoryBackend } from '../src/store/sources/directory-backend.js';
import { MessageSources } from '../src/store/sources/message-sources.js';
import { S3Backend } from '../src/store/sources/s3-backend.js';
import { mapLimited } from '../src/shared/map-limited.js';
import type { BlobBackend, SourceKind } from '../src/store/sources/source-backend.js';
import { addCleanup } from '../test/support/cleanup.js';
import { rawMail } from '../test/support/mail.js';
import {
  appendMessages,
  prepareMailroom,
  runBench,
  startBenchDovecot,
  within,
  type MailroomUnderTest,
} from './support/environment.js';
import { compare, emit, progress } from './support/report.js';

const BENCH = 'blob-store';
const MESSAGES = Number(process.env.BENCH_BLOB_MESSAGES ?? 2_000);
const KB = Number(process.env.BENCH_BLOB_KB ?? 20);
const ROUNDS = Number(process.env.BENCH_BLOB_ROUNDS ?? 2);
const USER = 'blobs@bench.example';
const ROUTE_TIMEOUT_MS = 15 * 60_000;
const KINDS: SourceKind[] = ['postgres', 'directory', 's3'];
const STORED = Number(process.env.BENCH_BLOB_STORED ?? 200_000);
const STORED_KB = Number(process.env.BENCH_BLOB_STORED_KB ?? 1);
/** [20000] stored rows seeded per statement. */
const SEED_CHUNK = 20_000;
/** The tenant the standing objects of the bucket belong to. */
const STORED_TENANT = '00000000-0000-4000-8000-000000000001';

/** The id of stored message `i`: the same in SQL (`md5('stored' || i)::uuid`) and here. */
function storedId(i: number): string {
  const hex = createHash('md5').update(`stored${i}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

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
  // The standing sources: a folder of STORED files (moved into each run's tenant folder and
  // back) and STORED objects of another tenant in the bucket.
  const seeded = performance.now();
  const standing = Buffer.alloc(STORED_KB * 1024, 'x');
  const storedDir = await mkdtemp(join(tmpdir(), 'mailroom-bench-stored-'));
  addCleanup(() => rm(storedDir, { recursive: true, force: true }));
  const ids = Array.from({ length: STORED }, (_, i) => storedId(i + 1));
  // Written straight into the folder: a seed, not the backend's durable path.
  await mkdir(join(storedDir, STORED_TENANT), { recursive: true, mode: 0o700 });
  await mapLimited(ids, 32, (id) => writeFile(join(storedDir, STORED_TENANT, `${id}.eml`), standing, { mode: 0o600 }));
  await mapLimited(ids, 64, (id) => bucketMaker.put({ tenantId: STORED_TENANT, messageId: id }, standing));
  await bucketMaker.close();
  progress(
    BENCH,
    `seeded ${STORED} sources of ${STORED_KB} KB in the folder and the bucket in ${Math.round(performance.now() - seeded)} ms`,
  );

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
        stored: STORED,
        storedKb: STORED_KB,
        rounds: ROUNDS,
        roundMs: times[kind].map(Math.round).join(' '),
        postgresRoundMs: times.postgres.map(Math.round).join(' '),
      }),
    );
  }

  /** The standing messages' rows in a run's fresh database: sources in `kind` (PostgreSQL's in inbound_raw). */
  async function seedRows(mailroom: MailroomUnderTest, kind: SourceKind): Promise<void> {
    for (let from = 1; from <= STORED; from += SEED_CHUNK) {
      const to = Math.min(STORED, from + SEED_CHUNK - 1);
      await mailroom.store.query(
        `INSERT INTO inbound_messages (id, tenant_id, server_id, mailbox, uid_validity, uid, status, message_id_header,
           dedupe_key, conversation_id, subject, from_address, from_name, recipients, received_at, ingested_at, size,
           classification, message_references, body_text, attachments, source_store, source_size)
         SELECT md5('stored' || i)::uuid, $1, $2, 'Archive', 1, i, 'routed', 's' || i || '@bench.example', 'stored:' || i,
                md5('c' || i)::uuid, 'Stored ' || i, 'customer@example.net', 'Customer',
                '{"to":[],"cc":[],"deliveredTo":[],"xOriginalTo":[]}', now(), now(), $5::int,
                '{"autoReply":false,"bounce":false,"loop":false,"reasons":[]}', '[]', 'Hello', '[]', $6, $5::int
           FROM generate_series($3::int, $4::int) AS i`,
        [mailroom.tenantId, mailroom.serverId, from, to, STORED_KB * 1024, kind],
      );
      if (kind === 'postgres') {
        await mailroom.store.query(
          `INSERT INTO inbound_raw (message_id, raw)
           SELECT md5('stored' || i)::uuid, convert_to(repeat('x', $3::int), 'UTF8') FROM generate_series($1::int, $2::int) AS i`,
          [from, to, STORED_KB * 1024],
        );
      }
    }
    await mailroom.store.query('ANALYZE');
  }

  /** A fresh database, sources to `kind`; ms from start() until every message is routed. */
  async function run(kind: SourceKind): Promise<number> {
    const mailroom = await prepareMailroom(dovecot, USER, USER);
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-bench-blobs-'));
    await seedRows(mailroom, kind);
    const tenantFolder = join(dir, mailroom.tenantId.toLowerCase());
    if (kind === 'directory') await rename(join(storedDir, STORED_TENANT), tenantFolder);
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
    const expected = MESSAGES + STORED;
    if (Number(row?.n) !== expected) throw new Error(`${kind}: ${row?.n} sources stored, expected ${expected}`);
    await mailroom.store.sources.close();
    if (kind === 'directory') {
      // The standing files back to their folder for the next run, without the run's new ones.
      const fresh = await mailroom.store.query<{ id: string }>(
        `SELECT id FROM inbound_messages WHERE mailbox <> 'Archive'`,
      );
      for (const { id } of fresh) await rm(join(tenantFolder, `${id}.eml`));
      await rename(tenantFolder, join(storedDir, STORED_TENANT));
    }
    await rm(dir, { recursive: true, force: true });
    return elapsed;
  }
});
