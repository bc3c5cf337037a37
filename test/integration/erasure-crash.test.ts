import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mapLimited } from '../../src/shared/map-limited.js';
import { DirectoryBackend } from '../../src/store/sources/directory-backend.js';
import type { BlobBackend } from '../../src/store/sources/source-backend.js';
import { Store, type StoreKind } from '../../src/store/store.js';
import { createTestDatabase, quietLogger } from '../support/database.js';
import {
  CUSTOMER,
  OTHER,
  inspectErasure,
  seedErasureTenant,
  type Inspection,
  type SeedRequest,
  type Seeded,
} from '../support/erasure-crash-db.js';
import { eventually } from '../support/mail.js';
import { PROJECT_ROOT, freePort, runScript, startEngineProcess, waitForHttp } from '../support/processes.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';
import { startTestS3, type TestS3 } from '../support/s3-server.js';

/** Messages of the customer (8 batches of the erasure's 200), and of someone else. */
const CUSTOMER_MESSAGES = 1600;
const OTHER_MESSAGES = 40;
const DB_SCRIPT = join(PROJECT_ROOT, 'test/support/erasure-crash-db.ts');

type Receipt = { id: string; counts: Record<string, number>; finishedAt: string | null };

/** The test's access to the engine's database: its own store on PostgreSQL; a process of its own on PGlite. */
interface Database {
  env: Record<string, string>;
  seed(request: SeedRequest): Promise<Seeded>;
  /** Only while no engine runs (an embedded database has one process at a time). */
  inspect(tenantId: string): Promise<Inspection>;
  close(): Promise<void>;
}

async function postgresDatabase(): Promise<Database> {
  const url = await createTestDatabase();
  const store = await Store.open({ databaseUrl: url }, quietLogger);
  return {
    env: { MAILROOM_DATABASE_URL: url },
    seed: (request) => seedErasureTenant(store, request),
    inspect: (tenantId) => inspectErasure(store, tenantId),
    close: () => store.close(),
  };
}

/** The engine's embedded database (MAILROOM_DATA_DIR), opened by a process of its own for each look. */
function embeddedDatabase(work: string): Database {
  const dataDir = join(work, 'data');
  const run = async <T>(mode: string, arg: string): Promise<T> => {
    const res = await runScript(DB_SCRIPT, [mode, join(dataDir, 'pglite'), arg]);
    assert.equal(res.code, 0, `${mode} in the embedded database failed: ${res.stderr}`);
    return JSON.parse(res.stdout) as T;
  };
  return {
    env: { MAILROOM_DATA_DIR: dataDir },
    seed: (request) => run('seed', JSON.stringify(request)),
    inspect: (tenantId) => run('inspect', tenantId),
    close: async () => undefined,
  };
}

/**
 * Erasure on request survives a SIGKILL of the engine half way: the rows of a batch, its counts
 * and the list of its sources elsewhere commit together, so the request repeated after a restart
 * finds the same receipt, deletes the sources the killed run left behind and the rest, and in the
 * end no table, no file of the directory backend and no object of the S3 backend mentions the
 * address. On PostgreSQL and on the embedded database (killed with the engine, recovered by the
 * next process to open it).
 */
for (const kind of ['postgres', 'pglite'] as StoreKind[]) {
  describe(`erasure on request: SIGKILL half way, then the request again (engine process, ${kind})`, function () {
    this.timeout(300_000);
    let s3: TestS3;
    let db: Database | undefined;
    let work: string;
    let blobDir: string;
    let env: Record<string, string>;
    let tenantId: string;
    let engine: ChildProcess | undefined;

    before(async function () {
      this.timeout(300_000);
      if (kind === 'postgres') skipWithout(this, await postgresMissing());
      s3 = await startTestS3(`mailroom-erasure-crash-${kind}`);
      work = await mkdtemp(join(tmpdir(), 'mailroom-erasure-crash-'));
      blobDir = join(work, 'blobs');
      const key = randomBytes(32);
      db = kind === 'postgres' ? await postgresDatabase() : embeddedDatabase(work);
      env = {
        ...db.env,
        MAILROOM_SECRET_KEY: key.toString('base64'),
        MAILROOM_API_TOKEN: 'erasure-crash-token',
        MAILROOM_LOG_LEVEL: 'warn',
        MAILROOM_BLOB_DIR: blobDir,
        MAILROOM_S3_ENDPOINT: s3.endpoint,
        MAILROOM_S3_BUCKET: s3.bucket,
        MAILROOM_S3_ACCESS_KEY_ID: 'test',
        MAILROOM_S3_SECRET_ACCESS_KEY: 'test',
        MAILROOM_S3_FORCE_PATH_STYLE: 'true',
        MAILROOM_SPOOL_DIR: join(work, 'spool'),
      };
      // Stored messages as ingest leaves them, every other one's source in the directory, the rest in S3.
      const seeded = await db.seed({
        key: key.toString('base64'),
        customerMessages: CUSTOMER_MESSAGES,
        otherMessages: OTHER_MESSAGES,
      });
      tenantId = seeded.tenantId;
      const directory = new DirectoryBackend(blobDir, false);
      const bucket = s3.backend({ maxAttempts: 3 });
      await mapLimited(seeded.messages, 16, async (r) => {
        const backend: BlobBackend = r.i % 2 === 0 ? directory : bucket;
        const raw = `From: Someone <${r.from_address}>\r\nTo: support@example.com\r\nSubject: Order ${r.i}\r\n\r\nHello\r\n`;
        await backend.put({ tenantId, messageId: r.id }, Buffer.from(raw));
      });
    });

    after(async () => {
      if (engine && engine.exitCode === null) {
        engine.kill('SIGKILL');
        await once(engine, 'exit');
      }
      await db?.close();
      await s3?.close();
      if (work) await rm(work, { recursive: true, force: true });
    });

    async function startEngine(): Promise<{ port: number; output: () => string }> {
      const port = await freePort();
      const started = startEngineProcess({ ...env, MAILROOM_HTTP_PORT: String(port) }, work);
      engine = started.child;
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, 120_000, engine);
      return { port, output: started.output };
    }

    function erase(port: number): Promise<Response> {
      return fetch(`http://127.0.0.1:${port}/api/v1/tenants/${tenantId}/erasures`, {
        method: 'POST',
        headers: { authorization: `Bearer ${env.MAILROOM_API_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ address: CUSTOMER }),
      });
    }

    /** The tenant's files in the directory backend. */
    async function directoryFiles(): Promise<number> {
      return (await readdir(join(blobDir, tenantId))).length;
    }

    /** Files of the directory backend, and objects of the S3 backend, whose bytes mention `needle`. */
    async function sourcesMentioning(needle: string): Promise<{ files: number; objects: number }> {
      let files = 0;
      for (const name of await readdir(blobDir, { recursive: true })) {
        const path = join(blobDir, name);
        if ((await stat(path)).isFile() && (await readFile(path, 'latin1')).toLowerCase().includes(needle)) files += 1;
      }
      const bucket = s3.backend({ maxAttempts: 3 });
      let objects = 0;
      let cursor: string | null = null;
      do {
        const page: Awaited<ReturnType<BlobBackend['list']>> = await bucket.list(cursor, 1000);
        for (const item of page.items) {
          const bytes = await bucket.get(item);
          if (bytes?.toString('latin1').toLowerCase().includes(needle)) objects += 1;
        }
        cursor = page.next;
      } while (cursor !== null);
      return { files, objects };
    }

    it('is completed by the same request after the engine was killed half way, leaving no trace', async () => {
      const before = await sourcesMentioning(CUSTOMER);
      assert.equal(before.files + before.objects, CUSTOMER_MESSAGES, 'every source mentions the address at first');
      const filesAtFirst = await directoryFiles();

      const first = await startEngine();
      const answer = erase(first.port).catch(() => undefined); // the engine dies before it answers
      // Kill it once some batches are done and before the last: a batch's directory sources are
      // deleted right after its rows commit (half of a batch's 200 messages have theirs there).
      // Watched on the disk, not in the database, which the embedded engine holds alone.
      await eventually(async () => ((await directoryFiles()) <= filesAtFirst - 200 ? true : undefined), 120_000, 5);
      engine?.kill('SIGKILL');
      await once(engine as ChildProcess, 'exit');
      await answer;
      const cut = await (db as Database).inspect(tenantId);
      process.stdout.write(`      killed after ${cut.receipt?.counts.messages} of ${CUSTOMER_MESSAGES} messages\n`);
      assert.equal(cut.receipt?.finished, false, 'the kill landed before the erasure finished');
      assert.ok(cut.customerRows > 0 && cut.customerRows < CUSTOMER_MESSAGES, `half way: ${cut.customerRows} left`);
      assert.equal(
        CUSTOMER_MESSAGES - cut.customerRows,
        cut.receipt?.counts.messages,
        'the counts match what was deleted, exactly',
      );

      const second = await startEngine();
      const res = await erase(second.port);
      assert.equal(res.status, 200, second.output());
      const receipt = (await res.json()) as Receipt;
      assert.ok(receipt.finishedAt, 'finished by the second request');
      assert.equal(receipt.counts.messages, CUSTOMER_MESSAGES);
      assert.equal(receipt.counts.sources, CUSTOMER_MESSAGES);
      assert.equal(receipt.counts.deliveries, CUSTOMER_MESSAGES);
      engine?.kill('SIGTERM');
      await once(engine as ChildProcess, 'exit');

      const end = await (db as Database).inspect(tenantId);
      assert.equal(end.customerRows, 0);
      assert.deepEqual(end.tablesMentioning, []);
      assert.deepEqual(await sourcesMentioning(CUSTOMER), { files: 0, objects: 0 });
      assert.equal(end.erasureSources, 0);
      // The other customer's messages and sources stay, all of them.
      const others = await sourcesMentioning(OTHER);
      assert.equal(others.files + others.objects, OTHER_MESSAGES);
      assert.equal(end.tenantRows, OTHER_MESSAGES);
    });
  });
}
