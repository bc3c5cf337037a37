import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { DirectoryBackend } from '../../src/store/sources/directory-backend.js';
import { MessageSources } from '../../src/store/sources/message-sources.js';
import type { BlobBackend, SourceKind } from '../../src/store/sources/source-backend.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { sharedStore } from '../support/database.js';
import { eventually, rawMail } from '../support/mail.js';
import { startTestS3, type TestS3 } from '../support/s3-server.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const EXTERNAL: Array<Exclude<SourceKind, 'postgres'>> = ['directory', 's3'];

forEachBackend('message sources in a directory or an object store', (kind) => {
  let h: ApiHarness;
  let imap: FakeImapServer;
  let s3: TestS3;
  let dir: string;
  let tenantId: string;

  before(async function () {
    this.timeout(120_000); // the first open of the embedded database takes long on a loaded machine
    s3 = await startTestS3();
    await sharedStore(kind);
  });
  after(async () => {
    await s3.close();
  });
  beforeEach(async () => {
    h = await openApiHarness(kind);
    imap = await startFakeImap({ users: [{ user: 'support@example.com', password: 'imap-pass' }] });
    dir = await mkdtemp(join(tmpdir(), 'mailroom-blobs-'));
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Sources' })).body.id;
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-30).join('\n')}\n`);
    }
    s3.up();
    if (!h) return;
    await h.close();
    await imap.close();
    await h.store.useSources((query) => MessageSources.inDatabase(query)).close();
    await rm(dir, { recursive: true, force: true });
    h = undefined as unknown as ApiHarness;
  });

  function backendOf(which: Exclude<SourceKind, 'postgres'>, options: { maxAttempts?: number } = {}): BlobBackend {
    return which === 'directory' ? new DirectoryBackend(dir) : s3.backend(options);
  }

  function use(which: SourceKind, options: { maxAttempts?: number } = {}): MessageSources {
    const backends = new Map<Exclude<SourceKind, 'postgres'>, BlobBackend>();
    for (const k of EXTERNAL) backends.set(k, backendOf(k, options));
    let made: MessageSources | undefined;
    void h.store.useSources((query) => {
      made = new MessageSources(which, backends, query);
      return made;
    });
    return made as MessageSources;
  }

  async function addMailbox(): Promise<{ serverId: string; destinationId: string }> {
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Main',
      imap: {
        host: '127.0.0.1',
        port: imap.port,
        secure: false,
        user: 'support@example.com',
        auth: { method: 'password', password: 'imap-pass' },
      },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    });
    assert.equal(server.status, 201, server.raw);
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId: server.body.id,
    });
    assert.equal(destination.status, 201, destination.raw);
    return { serverId: server.body.id, destinationId: destination.body.id };
  }

  async function feedUntil(destinationId: string, count: number, timeoutMs = 15_000): Promise<Obj[]> {
    return eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages`);
      return res.body.messages?.length >= count ? (res.body.messages as Obj[]) : undefined;
    }, timeoutMs);
  }

  for (const which of ['postgres', ...EXTERNAL] as const) {
    it(`stores each source once in ${which} and serves it back byte for byte`, async () => {
      use(which);
      const { destinationId } = await addMailbox();
      const mails = [rawMail({ subject: 'one' }), rawMail({ subject: 'two', body: 'with a NUL \u0000 and bytes' })];
      for (const mail of mails) imap.append('support@example.com', 'INBOX', mail);
      await h.inbound.start();
      const messages = await feedUntil(destinationId, 2);
      for (const [i, m] of messages.entries()) {
        const res = await h.app.inject({
          method: 'GET',
          url: `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages/${m.id}/raw`,
          headers: { authorization: `Bearer ${h.adminToken}` },
        });
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.rawPayload.toString('latin1'), Buffer.from(mails[i] as string).toString('latin1'));
      }
      const rows = await h.store.query<{ source_store: string; source_size: number }>(
        'SELECT source_store, source_size FROM inbound_messages ORDER BY uid',
      );
      assert.deepEqual(
        rows.map((r) => r.source_store),
        [which, which],
      );
      assert.deepEqual(
        rows.map((r) => Number(r.source_size)),
        mails.map((m) => Buffer.byteLength(m)),
      );
      const inDatabase = await h.store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_raw');
      assert.equal(Number(inDatabase[0]?.n), which === 'postgres' ? 2 : 0);
      if (which !== 'postgres') {
        const listed = await backendOf(which).list(null, 100);
        assert.deepEqual(listed.items.map((s) => s.messageId).sort(), messages.map((m) => m.id).sort());
      }
      if (which === 'directory') {
        const tenantDir = join(dir, tenantId);
        assert.equal((await stat(tenantDir)).mode & 0o777, 0o700);
        for (const file of await readdir(tenantDir)) {
          assert.equal((await stat(join(tenantDir, file))).mode & 0o777, 0o600, file);
        }
      }
    });

    if (which === 'postgres') continue;

    it(`sweeps orphans from ${which} (a crash between the write and the commit) and nothing else`, async () => {
      const sources = use(which);
      const { destinationId } = await addMailbox();
      imap.append('support@example.com', 'INBOX', rawMail({ subject: 'kept' }));
      await h.inbound.start();
      const [kept] = await feedUntil(destinationId, 1);
      // What a crash after the write and before the commit leaves: sources no row names.
      const orphan = { tenantId, messageId: randomUUID() };
      const young = { tenantId, messageId: randomUUID() };
      await sources.writeAhead([
        { ref: orphan, raw: Buffer.from('orphan') },
        { ref: young, raw: Buffer.from('young') },
      ]);
      const cutoff = new Date(Date.now() + 60_000);
      if (which === 'directory') {
        // The young one was written after the cutoff (still within the grace of a commit in progress).
        const later = new Date(cutoff.getTime() + 60_000);
        await utimes(join(dir, tenantId, `${young.messageId}.eml`), later, later);
        await writeFile(join(dir, 'tmp', 'interrupted'), 'half');
        const old = new Date(Date.now() - 3_600_000);
        await utimes(join(dir, 'tmp', 'interrupted'), old, old);
      }
      const report = await sources.sweep(which === 'directory' ? cutoff : new Date(Date.now() + 60_000));
      const left = (await backendOf(which).list(null, 100)).items.map((s) => s.messageId);
      assert.ok(left.includes(kept?.id), 'the source of a stored message stays');
      assert.ok(!left.includes(orphan.messageId), 'the orphan is gone');
      if (which === 'directory') {
        assert.ok(left.includes(young.messageId), 'a source younger than the grace stays');
        assert.equal(report.removed, 1);
        assert.equal(await (backendOf(which) as DirectoryBackend).removeStaleTemporaries(new Date()), 1);
      }
      const raw = await h.app.inject({
        method: 'GET',
        url: `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages/${kept?.id}/raw`,
        headers: { authorization: `Bearer ${h.adminToken}` },
      });
      assert.equal(raw.statusCode, 200);
    });
  }

  it('waits out an object store outage: nothing is stored until the source is, then each message once', async () => {
    use('s3');
    const { destinationId } = await addMailbox();
    s3.down();
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'during the outage' }));
    await h.inbound.start();
    // The pass fails on the write ahead and is retried; no row, no checkpoint past the message.
    await eventually(async () =>
      h.logLines.some((l) => l.includes('SOURCE_STORE_UNAVAILABLE') || l.includes('could not be written in s3'))
        ? true
        : undefined,
    );
    const during = await h.store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_messages');
    assert.equal(Number(during[0]?.n), 0, 'nothing is marked stored while its source is not');
    const checkpoints = await h.store.query<{ last_uid: string }>('SELECT last_uid FROM mailbox_checkpoints');
    assert.ok(checkpoints.every((c) => Number(c.last_uid) === 0));
    // Reading a source while the store is down answers 503, not a crash.
    s3.up();
    const [message] = await feedUntil(destinationId, 1, 20_000);
    assert.equal(message?.subject, 'during the outage');
    s3.down();
    const res = await h.call<Obj>(
      'GET',
      `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages/${message?.id}/raw`,
    );
    assert.equal(res.status, 503, res.raw);
    assert.equal(res.body.error.code, 'SOURCE_STORE_UNAVAILABLE');
    s3.up();
    const rows = await h.store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_messages');
    assert.equal(Number(rows[0]?.n), 1);
  });
});
