import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccounts } from '../../src/accounts/index.js';
import { mapLimited } from '../../src/shared/map-limited.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import { DirectoryBackend } from '../../src/store/sources/directory-backend.js';
import type { BlobBackend } from '../../src/store/sources/source-backend.js';
import { Store } from '../../src/store/store.js';
import { createTestDatabase, quietLogger } from '../support/database.js';
import { eventually } from '../support/mail.js';
import { freePort, startEngineProcess, waitForHttp } from '../support/processes.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';
import { startTestS3, type TestS3 } from '../support/s3-server.js';

const CUSTOMER = 'customer@example.net';
/** Messages of the customer (8 batches of the erasure's 200), and of someone else. */
const CUSTOMER_MESSAGES = 1600;
const OTHER_MESSAGES = 40;

type Receipt = { id: string; counts: Record<string, number>; finishedAt: string | null };

/**
 * Erasure on request survives a SIGKILL of the engine half way: the rows of a batch, its counts
 * and the list of its sources elsewhere commit together, so the request repeated after a restart
 * finds the same receipt, deletes the sources the killed run left behind and the rest, and in the
 * end no table, no file of the directory backend and no object of the S3 backend mentions the address.
 */
describe('erasure on request: SIGKILL half way, then the request again (engine process)', function () {
  this.timeout(300_000);
  let s3: TestS3;
  let store: Store;
  let work: string;
  let blobDir: string;
  let env: Record<string, string>;
  let tenantId: string;
  let engine: ChildProcess | undefined;

  before(async function () {
    this.timeout(300_000);
    skipWithout(this, await postgresMissing());
    s3 = await startTestS3('mailroom-erasure-crash');
    work = await mkdtemp(join(tmpdir(), 'mailroom-erasure-crash-'));
    blobDir = join(work, 'blobs');
    const key = randomBytes(32);
    env = {
      MAILROOM_DATABASE_URL: await createTestDatabase(),
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
    store = await Store.open({ databaseUrl: env.MAILROOM_DATABASE_URL }, quietLogger);
    const accounts = createAccounts(store, new SecretSealer(key), quietLogger);
    const tenant = await accounts.tenants.create({ name: 'Erasure crash' });
    tenantId = tenant.id;
    const server = await accounts.servers.create(tenant.id, {
      name: 'Box',
      imap: { host: '127.0.0.1', port: 1, secure: false, user: 'box', auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    });
    const destination = await accounts.destinations.create(tenant.id, {
      name: 'Support',
      address: 'support@example.com',
      serverId: server.id,
    });
    // Stored messages as ingest leaves them, every other one's source in the directory, the rest in S3.
    const total = CUSTOMER_MESSAGES + OTHER_MESSAGES;
    const rows = await store.query<{ id: string; from_address: string; i: number }>(
      `INSERT INTO inbound_messages (id, tenant_id, server_id, mailbox, uid_validity, uid, status, message_id_header,
         dedupe_key, conversation_id, subject, from_address, from_name, recipients, received_at, ingested_at, size,
         classification, message_references, body_text, attachments, source_store, source_size)
       SELECT md5($1::text || i)::uuid, $1::uuid, $2::uuid, 'INBOX', 1, i, 'routed', 'm' || i || '@example.net', 'm' || i,
              md5('c' || i)::uuid, 'Order ' || i, CASE WHEN i <= $4 THEN $5 ELSE 'other@example.net' END, 'Someone',
              jsonb_build_object('to', jsonb_build_array(jsonb_build_object('address', 'support@example.com', 'name', '')),
                                 'cc', '[]'::jsonb, 'deliveredTo', '[]'::jsonb, 'xOriginalTo', '[]'::jsonb),
              now(), now() - make_interval(secs => $3 - i), 300,
              '{"autoReply":false,"bounce":false,"loop":false,"reasons":[]}', '[]', 'Hello', '[]',
              CASE WHEN i % 2 = 0 THEN 'directory' ELSE 's3' END, 300
         FROM generate_series(1, $3::int) AS i
       RETURNING id, from_address, uid::int AS i`,
      [tenant.id, server.id, total, CUSTOMER_MESSAGES, CUSTOMER],
    );
    await store.query(
      `INSERT INTO inbound_deliveries (destination_id, seq, message_id, tenant_id)
       SELECT $1, uid, id, tenant_id FROM inbound_messages WHERE tenant_id = $2`,
      [destination.id, tenant.id],
    );
    const directory = new DirectoryBackend(blobDir, false);
    const bucket = s3.backend({ maxAttempts: 3 });
    await mapLimited(rows, 16, async (r) => {
      const backend: BlobBackend = r.i % 2 === 0 ? directory : bucket;
      const raw = `From: Someone <${r.from_address}>\r\nTo: support@example.com\r\nSubject: Order ${r.i}\r\n\r\nHello\r\n`;
      await backend.put({ tenantId: tenant.id, messageId: r.id }, Buffer.from(raw));
    });
  });

  after(async () => {
    if (engine && engine.exitCode === null) {
      engine.kill('SIGKILL');
      await once(engine, 'exit');
    }
    await store?.close();
    await s3?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function startEngine(): Promise<{ port: number; output: () => string }> {
    const port = await freePort();
    const started = startEngineProcess({ ...env, MAILROOM_HTTP_PORT: String(port) }, work);
    engine = started.child;
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 90_000, engine);
    return { port, output: started.output };
  }

  function erase(port: number): Promise<Response> {
    return fetch(`http://127.0.0.1:${port}/api/v1/tenants/${tenantId}/erasures`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.MAILROOM_API_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ address: CUSTOMER }),
    });
  }

  async function receiptRow(): Promise<{ counts: Record<string, number>; finished: boolean } | undefined> {
    const rows = await store.query<{ counts: Record<string, number>; finished_at: Date | null }>(
      'SELECT counts, finished_at FROM erasures WHERE tenant_id = $1',
      [tenantId],
    );
    const row = rows[0];
    return row ? { counts: row.counts, finished: row.finished_at !== null } : undefined;
  }

  async function customerRows(): Promise<number> {
    const rows = await store.query<{ n: string }>(
      'SELECT count(*) AS n FROM inbound_messages WHERE tenant_id = $1 AND from_address = $2',
      [tenantId, CUSTOMER],
    );
    return Number(rows[0]?.n);
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

  /** Tables of the schema with a row whose text mentions `needle`. */
  async function tablesMentioning(needle: string): Promise<string[]> {
    const tables = await store.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
    );
    const found: string[] = [];
    for (const { table_name } of tables) {
      const rows = await store.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${table_name}" t WHERE strpos(lower(t::text), $1) > 0`,
        [needle],
      );
      if (Number(rows[0]?.n) > 0) found.push(table_name);
    }
    return found;
  }

  it('is completed by the same request after the engine was killed half way, leaving no trace', async () => {
    const before = await sourcesMentioning(CUSTOMER);
    assert.equal(before.files + before.objects, CUSTOMER_MESSAGES, 'every source mentions the address at first');

    const first = await startEngine();
    const answer = erase(first.port).catch(() => undefined); // the engine dies before it answers
    // Kill it once some batches are done and before the last.
    await eventually(
      async () => {
        const row = await receiptRow();
        return row && (row.counts.messages ?? 0) >= 400 ? true : undefined;
      },
      60_000,
      5,
    );
    engine?.kill('SIGKILL');
    await once(engine as ChildProcess, 'exit');
    await answer;
    const cut = await receiptRow();
    const left = await customerRows();
    process.stdout.write(`      killed after ${cut?.counts.messages} of ${CUSTOMER_MESSAGES} messages\n`);
    assert.equal(cut?.finished, false, 'the kill landed before the erasure finished');
    assert.ok(left > 0 && left < CUSTOMER_MESSAGES, `half way: ${left} left`);
    assert.equal(CUSTOMER_MESSAGES - left, cut?.counts.messages, 'the counts match what was deleted, exactly');

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

    assert.equal(await customerRows(), 0);
    assert.deepEqual(await tablesMentioning(CUSTOMER), []);
    assert.deepEqual(await sourcesMentioning(CUSTOMER), { files: 0, objects: 0 });
    const listed = await store.query<{ n: string }>('SELECT count(*) AS n FROM erasure_sources');
    assert.equal(Number(listed[0]?.n), 0);
    // The other customer's messages and sources stay, all of them.
    const others = await sourcesMentioning('other@example.net');
    assert.equal(others.files + others.objects, OTHER_MESSAGES);
    const rows = await store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_messages WHERE tenant_id = $1', [
      tenantId,
    ]);
    assert.equal(Number(rows[0]?.n), OTHER_MESSAGES);
  });
});
