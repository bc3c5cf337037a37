import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccounts } from '../../src/accounts/index.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import { DirectoryBackend } from '../../src/store/sources/directory-backend.js';
import type { SourceKind } from '../../src/store/sources/source-backend.js';
import { Store, type StoreKind } from '../../src/store/store.js';
import { createTestDatabase, isPostgresReachable, quietLogger } from '../support/database.js';
import { CANARY_PASSWORD, serverBody } from '../support/fixtures.js';
import { rawMail } from '../support/mail.js';
import { runCli } from '../support/processes.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON output in tests

const CUSTOMER = 'customer@example.net';

interface Seeded {
  tenantId: string;
  /** The sources by message id, as stored. */
  sources: Map<string, string>;
  customerIds: string[];
  outboundToCustomer: string;
}

/**
 * A message as ingest stores it (row, delivery, source in `kind`): the rows are written here, in
 * SQL, so that the CLI under test finds a tenant with mail without an engine having run.
 */
async function seedMessage(
  store: Store,
  at: { tenantId: string; serverId: string; destinationId: string; dir: string },
  raw: string,
  from: string,
  kind: SourceKind | null,
  uid: number,
): Promise<string> {
  const id = randomUUID();
  await store.query(
    `INSERT INTO inbound_messages (id, tenant_id, server_id, mailbox, uid_validity, uid, status, message_id_header,
       dedupe_key, conversation_id, subject, from_address, from_name, recipients, received_at, ingested_at, size,
       classification, message_references, body_text, attachments, source_store, source_size)
     VALUES ($1, $2, $3, 'INBOX', 1, $4::int, 'routed', $5, $5, $6, 'Question ' || $4::int, $7, 'Someone',
       jsonb_build_object('to', jsonb_build_array(jsonb_build_object('address', 'support@example.com', 'name', '')),
                          'cc', '[]'::jsonb, 'deliveredTo', '[]'::jsonb, 'xOriginalTo', '[]'::jsonb),
       now(), now() - make_interval(secs => 100 - $4::int), $8::int, '{"autoReply":false,"bounce":false,"loop":false,"reasons":[]}',
       '[]', 'Hello', '[]', $9::text, CASE WHEN $9::text IS NULL THEN NULL ELSE $8::int END)`,
    [id, at.tenantId, at.serverId, uid, `m${uid}@example.net`, randomUUID(), from, Buffer.byteLength(raw), kind],
  );
  await store.query(
    `INSERT INTO inbound_deliveries (destination_id, seq, message_id, tenant_id) VALUES ($1, $2, $3, $4)`,
    [at.destinationId, uid, id, at.tenantId],
  );
  if (kind === 'postgres') {
    await store.query('INSERT INTO inbound_raw (message_id, raw) VALUES ($1, $2)', [id, Buffer.from(raw)]);
  } else if (kind === 'directory') {
    await new DirectoryBackend(at.dir, false).put({ tenantId: at.tenantId, messageId: id }, Buffer.from(raw));
  }
  return id;
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
      const store = await Store.open(
        kind === 'postgres' ? { databaseUrl: env.MAILROOM_DATABASE_URL } : { pgliteDir: join(work, 'data', 'pglite') },
        quietLogger,
      );
      try {
        const accounts = createAccounts(store, new SecretSealer(key), quietLogger);
        const tenant = await accounts.tenants.create({ name: 'Export tenant' });
        const server = await accounts.servers.create(tenant.id, serverBody(1));
        const destination = await accounts.destinations.create(tenant.id, {
          name: 'Support',
          address: 'support@example.com',
          serverId: server.id,
        });
        const at = { tenantId: tenant.id, serverId: server.id, destinationId: destination.id, dir: blobDir };
        const sources = new Map<string, string>();
        const customerIds: string[] = [];
        const mails: Array<[string, SourceKind | null]> = [
          [CUSTOMER, 'postgres'],
          ['other@example.net', 'postgres'],
          [CUSTOMER, 'directory'],
          ['other@example.net', 'directory'],
          [CUSTOMER, null], // its source removed by retention
        ];
        for (const [i, [from, where]] of mails.entries()) {
          const raw = rawMail({ from: `Someone <${from}>`, body: `body ${i} \u00e9\u0000 of ${from}` });
          const id = await seedMessage(store, at, raw, from, where, i + 1);
          if (where !== null) sources.set(id, raw);
          if (from === CUSTOMER) customerIds.push(id);
        }
        const outboundToCustomer = randomUUID();
        for (const [id, to] of [
          [outboundToCustomer, CUSTOMER],
          [randomUUID(), 'other@example.net'],
        ] as const) {
          await store.query(
            `INSERT INTO outbound_messages (id, tenant_id, destination_id, server_id, status, message_id_header, subject, recipients, instance_id)
             VALUES ($1, $2, $3, $4, 'sent', $5, 'Re: your question', $6::jsonb, 'test-instance')`,
            [id, tenant.id, destination.id, server.id, `<${id}@example.com>`, JSON.stringify([to])],
          );
        }
        seeded = { tenantId: tenant.id, sources, customerIds, outboundToCustomer };
      } finally {
        await store.close();
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
        const source = seeded.sources.get(entry.id as string);
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
      for (const [id, source] of seeded.sources) {
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
