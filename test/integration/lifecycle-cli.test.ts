import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store, type StoreKind } from '../../src/store/store.js';
import { createTestDatabase, isPostgresReachable, quietLogger } from '../support/database.js';
import { CANARY_PASSWORD } from '../support/fixtures.js';
import { CUSTOMER, seedExportTenant, type Seeded } from '../support/lifecycle-seed.js';
import { PROJECT_ROOT, runCli, runScript } from '../support/processes.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON output in tests

/** The export tenant seeded into an embedded database by a process of its own (see lifecycle-seed.ts). */
async function seedEmbeddedInChild(pgliteDir: string, key: Buffer, blobDir: string): Promise<Seeded> {
  const res = await runScript(join(PROJECT_ROOT, 'test/support/lifecycle-seed.ts'), [
    pgliteDir,
    key.toString('base64'),
    blobDir,
  ]);
  assert.equal(res.code, 0, `seeding the embedded database failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as Seeded;
}

for (const kind of ['pglite', 'postgres'] as StoreKind[]) {
  describe(`mailroom export, retention and blobs migrate (CLI, ${kind})`, function () {
    this.timeout(120_000);
    let env: Record<string, string>;
    let work: string;
    let blobDir: string;
    let seeded: Seeded;

    before(async function () {
      this.timeout(240_000); // a first open of the embedded database takes long on a loaded machine
      if (kind === 'postgres' && !(await isPostgresReachable())) return this.skip();
      work = await mkdtemp(join(tmpdir(), 'mailroom-lifecycle-cli-'));
      blobDir = join(work, 'blobs');
      const key = randomBytes(32);
      env = {
        MAILROOM_SECRET_KEY: key.toString('base64'),
        MAILROOM_API_TOKEN: 'lifecycle-cli-token',
        MAILROOM_BLOB_DIR: blobDir,
        // Sources written before the directory was configured stay in PostgreSQL until migrated.
        MAILROOM_BLOB_STORE: 'postgres',
        ...(kind === 'postgres'
          ? { MAILROOM_DATABASE_URL: await createTestDatabase() }
          : { MAILROOM_DATA_DIR: join(work, 'data') }),
      };
      if (kind === 'pglite') {
        seeded = await seedEmbeddedInChild(join(work, 'data', 'pglite'), key, blobDir);
      } else {
        const store = await Store.open({ databaseUrl: env.MAILROOM_DATABASE_URL }, quietLogger);
        try {
          seeded = await seedExportTenant(store, key, blobDir);
        } finally {
          await store.close();
        }
      }
    });
    after(async () => {
      if (work) await rm(work, { recursive: true, force: true });
    });

    it("exports the tenant's configuration without secrets and every message as .eml with an index", async () => {
      const out = join(work, 'export-all');
      const res = await runCli(['--json', 'export', '--tenant', 'Export tenant', '--out', out], env);
      assert.equal(res.code, 0, res.stderr);
      const report = JSON.parse(res.stdout) as Obj;
      assert.equal(report.messages, 5);
      assert.equal(report.emlFiles, 4);
      assert.equal(report.outbound, 2);
      const config = await readFile(join(out, 'configuration.json'), 'utf8');
      assert.ok(!config.includes(CANARY_PASSWORD), 'no password in the export');
      const parsed = JSON.parse(config) as Obj;
      assert.equal(parsed.tenant.id, seeded.tenantId);
      assert.equal(parsed.servers[0].imap.auth.hasPassword, true);
      assert.equal(parsed.destinations[0].address, 'support@example.com');
      assert.deepEqual(parsed.retention.messageDays, null);
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as Obj;
      assert.equal(index.tenantId, seeded.tenantId);
      assert.equal(index.messages.length, 5);
      for (const entry of index.messages as Obj[]) {
        const source = seeded.sources[entry.id as string];
        if (source === undefined) {
          assert.equal(entry.eml, null);
          assert.equal(entry.emlMissing, 'removed by retention');
          continue;
        }
        const file = await readFile(join(out, entry.eml as string));
        assert.equal(file.toString('latin1'), Buffer.from(source).toString('latin1'), 'byte for byte');
        assert.equal((await stat(join(out, entry.eml as string))).mode & 0o777, 0o600);
      }
      // In the order they came.
      const times = (index.messages as Obj[]).map((m) => m.ingestedAt as string);
      assert.deepEqual(times, [...times].sort());
      assert.equal(index.outbound.length, 2);
      assert.equal((await stat(out)).mode & 0o777, 0o700);
      for (const name of await readdir(out, { recursive: true })) {
        const bytes = await readFile(join(out, name)).catch(() => Buffer.alloc(0));
        assert.ok(!bytes.includes(CANARY_PASSWORD), `no password in ${name}`);
      }
    });

    it("exports one customer's messages alone with --address, and refuses a folder that is not empty", async () => {
      const out = join(work, 'export-customer');
      const res = await runCli(
        ['--json', 'export', '--tenant', seeded.tenantId, '--out', out, '--address', 'Customer@Example.NET'],
        env,
      );
      assert.equal(res.code, 0, res.stderr);
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as Obj;
      assert.equal(index.filteredByAddress, CUSTOMER);
      assert.deepEqual((index.messages as Obj[]).map((m) => m.id).sort(), [...seeded.customerIds].sort());
      assert.deepEqual(
        (index.outbound as Obj[]).map((o) => o.id),
        [seeded.outboundToCustomer],
      );
      const files = await readdir(join(out, 'messages'));
      assert.equal(files.length, 2);
      for (const f of files) {
        assert.ok((await readFile(join(out, 'messages', f), 'utf8')).includes(CUSTOMER));
      }
      const again = await runCli(['export', '--tenant', seeded.tenantId, '--out', out], env);
      assert.equal(again.code, 2);
      assert.match(again.stderr, /error VALIDATION_FAILED: out .* is not empty .*\[field: out\]/);
      const file = join(work, 'a-file');
      await writeFile(file, 'x');
      const bad = await runCli(['export', '--tenant', seeded.tenantId, '--out', file, '--address', 'nobody'], env);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /\[field: address\]/);
    });

    it('shows and sets retention per tenant, refusing days out of range naming the field', async () => {
      const shown = await runCli(['--json', 'retention', 'show', '--tenant', 'Export tenant'], env);
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal((JSON.parse(shown.stdout) as Obj).rawSourceDays, null);
      const set = await runCli(
        ['--json', 'retention', 'set', '--tenant', 'Export tenant', '--raw-source-days', '30', '--message-days', '365'],
        env,
      );
      assert.equal(set.code, 0, set.stderr);
      assert.deepEqual(JSON.parse(set.stdout), {
        rawSourceDays: 30,
        messageBodyDays: null,
        messageDays: 365,
        outboundDays: null,
        logDays: null,
      });
      const forever = await runCli(
        ['--json', 'retention', 'set', '--tenant', 'Export tenant', '--raw-source-days', 'forever'],
        env,
      );
      assert.equal((JSON.parse(forever.stdout) as Obj).rawSourceDays, null);
      assert.equal((JSON.parse(forever.stdout) as Obj).messageDays, 365, 'the others stay');
      const bad = await runCli(['retention', 'set', '--tenant', 'Export tenant', '--log-days', '0'], env);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /error VALIDATION_FAILED: logDays must be .*\[field: logDays\]/);
      const none = await runCli(['retention', 'set', '--tenant', 'Export tenant'], env);
      assert.equal(none.code, 2);
    });

    it('moves every source into the directory with progress, then back, each readable throughout', async () => {
      const refused = await runCli(['blobs', 'migrate', '--to', 'tape'], env);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /\[field: to\]/);
      const noS3 = await runCli(['blobs', 'migrate', '--to', 's3'], env);
      assert.equal(noS3.code, 2);
      assert.match(noS3.stderr, /s3 backend is not configured \(set MAILROOM_S3_BUCKET/);

      const res = await runCli(['--json', 'blobs', 'migrate', '--to', 'directory', '--batch-size', '1'], env);
      assert.equal(res.code, 0, res.stderr);
      const report = JSON.parse(res.stdout) as Obj;
      assert.equal(report.total, 2);
      assert.equal(report.moved, 2);
      assert.match(report.note as string, /MAILROOM_BLOB_STORE=directory/);
      assert.match(res.stderr, /moved 1\/2 sources \(50%\)/);
      assert.match(res.stderr, /moved 2\/2 sources \(100%\)/);
      const files = await readdir(join(blobDir, seeded.tenantId));
      assert.equal(files.length, 4);
      // An export now reads them all from the directory, byte for byte.
      const out = join(work, 'export-after-move');
      const exported = await runCli(['--json', 'export', '--tenant', seeded.tenantId, '--out', out], env);
      assert.equal(exported.code, 0, exported.stderr);
      for (const [id, source] of Object.entries(seeded.sources)) {
        assert.equal(
          (await readFile(join(out, 'messages', `${id}.eml`))).toString('latin1'),
          Buffer.from(source).toString('latin1'),
        );
      }
      // Run again: nothing left to move. Then back into PostgreSQL: the directory empties.
      const again = await runCli(['--json', 'blobs', 'migrate', '--to', 'directory'], env);
      assert.equal((JSON.parse(again.stdout) as Obj).moved, 0);
      const back = await runCli(['--json', 'blobs', 'migrate', '--to', 'postgres'], env);
      assert.equal(back.code, 0, back.stderr);
      assert.equal((JSON.parse(back.stdout) as Obj).moved, 4);
      assert.deepEqual(await readdir(join(blobDir, seeded.tenantId)), []);
    });
  });
}
