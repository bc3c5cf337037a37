import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { migrateSources, type MigrationProgress } from '../../src/lifecycle/blob-migration.js';
import { isMailroomError } from '../../src/shared/errors.js';
import { DirectoryBackend } from '../../src/store/sources/directory-backend.js';
import { MessageSources } from '../../src/store/sources/message-sources.js';
import type { BlobBackend, SourceKind, SourceRef } from '../../src/store/sources/source-backend.js';
import {
  addPlainServer,
  addSupportDestination,
  forEachBackend,
  openApiHarness,
  type ApiHarness,
} from '../support/api-harness.js';
import { quietLogger, sharedStore } from '../support/database.js';
import { eventually, rawMail } from '../support/mail.js';
import { startTestS3, type TestS3 } from '../support/s3-server.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** A directory whose writes fail after `okPuts` of them (the disk filling up half way through a move). */
class FillingDirectory extends DirectoryBackend {
  okPuts = Infinity;
  override async put(ref: SourceRef, data: Buffer): Promise<void> {
    if (this.okPuts <= 0) throw new Error('ENOSPC: no space left on device (simulated)');
    this.okPuts -= 1;
    return super.put(ref, data);
  }
}

forEachBackend('mailroom blobs migrate while the engine runs', (kind) => {
  let h: ApiHarness;
  let imap: FakeImapServer;
  let s3: TestS3;
  let dir: string;
  let directory: FillingDirectory;
  let tenantId: string;
  let destinationId: string;
  /** What was appended to the mailbox, by subject. */
  const sent = new Map<string, string>();

  before(async function () {
    this.timeout(180_000); // the first open of the embedded database takes long on a loaded machine
    s3 = await startTestS3('mailroom-migrate');
    await sharedStore(kind);
  });
  after(async () => {
    await s3.close();
  });
  beforeEach(async () => {
    h = await openApiHarness(kind);
    imap = await startFakeImap({ users: [{ user: 'support@example.com', password: 'imap-pass' }] });
    dir = await mkdtemp(join(tmpdir(), 'mailroom-migrate-'));
    directory = new FillingDirectory(dir, false);
    sent.clear();
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Migrate' })).body.id;
    const serverId = await addPlainServer(h, tenantId, imap.port);
    destinationId = await addSupportDestination(h, tenantId, serverId);
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-30).join('\n')}\n`);
    }
    if (!h) return;
    await h.close();
    await imap.close();
    await h.store.useSources((query) => MessageSources.inDatabase(query)).close();
    await rm(dir, { recursive: true, force: true });
    h = undefined as unknown as ApiHarness;
  });

  /** New sources go to `writeKind`; the directory and the object store are both configured. */
  function use(writeKind: SourceKind): MessageSources {
    const backends = new Map<Exclude<SourceKind, 'postgres'>, BlobBackend>([
      ['directory', directory],
      ['s3', s3.backend({ maxAttempts: 2 })],
    ]);
    let made: MessageSources | undefined;
    void h.store.useSources((query) => {
      made = new MessageSources(writeKind, backends, query);
      return made;
    });
    return made as MessageSources;
  }

  function append(n: number, label: string): void {
    for (let i = 0; i < n; i += 1) {
      const subject = `${label} ${i}`;
      const raw = rawMail({ subject, body: `${label} ${i}: ${'x'.repeat(200 * i)} \u00e9` });
      sent.set(subject, raw);
      imap.append('support@example.com', 'INBOX', raw);
    }
  }

  async function messages(count: number): Promise<Obj[]> {
    return eventually(
      async () => {
        const res = await h.call<Obj>(
          'GET',
          `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages?limit=200`,
        );
        return res.body.messages?.length >= count ? (res.body.messages as Obj[]) : undefined;
      },
      30_000,
      100,
    );
  }

  /** Every message's source, read through the API, is the one appended (and none is lost). */
  async function assertAllReadable(list: Obj[]): Promise<void> {
    for (const m of list) {
      const res = await h.app.inject({
        method: 'GET',
        url: `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages/${m.id}/raw`,
        headers: { authorization: `Bearer ${h.adminToken}` },
      });
      assert.equal(res.statusCode, 200, `${m.subject}: ${res.body}`);
      assert.equal(res.rawPayload.toString('latin1'), Buffer.from(sent.get(m.subject) ?? '').toString('latin1'));
    }
  }

  async function storesOf(): Promise<Record<string, number>> {
    const rows = await h.store.query<{ source_store: string; n: string }>(
      'SELECT source_store, count(*) AS n FROM inbound_messages GROUP BY source_store',
    );
    return Object.fromEntries(rows.map((r) => [r.source_store, Number(r.n)]));
  }

  it('moves sources out of PostgreSQL while mail arrives and is read, then the rest on a second run', async function () {
    this.timeout(120_000);
    use('postgres');
    append(40, 'before');
    await h.inbound.start();
    const before = await messages(40);
    // Readers all along: each source stays readable while its row is switched.
    let reading = true;
    let reads = 0;
    const reader = (async () => {
      while (reading) {
        await assertAllReadable(before);
        reads += 1;
        // On the embedded database a round may settle in microtasks alone: let file I/O run.
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    append(10, 'during');
    const progress: MigrationProgress[] = [];
    const first = await migrateSources(
      { store: h.store, logger: quietLogger },
      { to: 'directory', batchSize: 7, onProgress: (p) => progress.push(p) },
    );
    reading = false;
    await reader;
    assert.ok(reads >= 1);
    assert.ok(first.moved >= 40, `moved ${first.moved}`);
    assert.equal(first.missing, 0);
    assert.ok(progress.length >= 6, 'progress after each batch');
    assert.deepEqual(
      progress.map((p) => p.moved),
      [...progress.map((p) => p.moved)].sort((a, b) => a - b),
    );
    assert.equal(progress.at(-1)?.moved, first.moved);
    // What arrived during the run may have been written to PostgreSQL after its page: a second run moves it.
    const all = await messages(50);
    const second = await migrateSources({ store: h.store, logger: quietLogger }, { to: 'directory' });
    assert.equal(first.moved + second.moved, 50);
    assert.deepEqual(await storesOf(), { directory: 50 });
    const inDatabase = await h.store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_raw');
    assert.equal(Number(inDatabase[0]?.n), 0, 'the old copies are gone');
    assert.equal((await readdir(join(dir, tenantId))).length, 50);
    await assertAllReadable(all);
  });

  it('carries on after a run that failed half way (the target full), with nothing lost or doubled', async function () {
    this.timeout(120_000);
    use('s3');
    append(25, 'mail');
    await h.inbound.start();
    const all = await messages(25);
    await h.inbound.stop();
    assert.deepEqual(await storesOf(), { s3: 25 });
    directory.okPuts = 12;
    let failure: unknown;
    const progress: MigrationProgress[] = [];
    await migrateSources(
      { store: h.store, logger: quietLogger },
      { to: 'directory', batchSize: 5, onProgress: (p) => progress.push(p) },
    ).catch((err: unknown) => (failure = err));
    assert.ok(isMailroomError(failure, 'SOURCE_STORE_UNAVAILABLE'), String(failure));
    assert.equal(progress.at(-1)?.moved, 10, 'two whole batches were moved before the failure');
    assert.deepEqual(await storesOf(), { s3: 15, directory: 10 });
    await assertAllReadable(all);
    directory.okPuts = Infinity;
    const resumed = await migrateSources({ store: h.store, logger: quietLogger }, { to: 'directory', batchSize: 5 });
    assert.equal(resumed.total, 15);
    assert.equal(resumed.moved, 15);
    assert.deepEqual(await storesOf(), { directory: 25 });
    await assertAllReadable(all);
    // The object store keeps no copy once its rows moved.
    const left = await s3.backend().list(null, 100);
    assert.deepEqual(
      left.items.filter((i) => i.tenantId === tenantId),
      [],
    );
    // And into the object store again, from the directory.
    const back = await migrateSources({ store: h.store, logger: quietLogger }, { to: 's3' });
    assert.equal(back.moved, 25);
    assert.deepEqual(await readdir(join(dir, tenantId)), []);
    await assertAllReadable(all);
  });
});
