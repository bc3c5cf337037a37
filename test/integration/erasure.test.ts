import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { metricsRegistry } from '../../src/shared/metrics.js';
import { DirectoryBackend } from '../../src/store/sources/directory-backend.js';
import { MessageSources } from '../../src/store/sources/message-sources.js';
import type { BlobBackend, SourceRef } from '../../src/store/sources/source-backend.js';
import {
  addPlainServer,
  addSupportDestination,
  forEachBackend,
  openApiHarness,
  type ApiHarness,
} from '../support/api-harness.js';
import { sharedStore } from '../support/database.js';
import { eventually, rawMail } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const CUSTOMER = 'customer@example.net';

/** A directory backend whose deletions fail while `failing` is set (a crash, or the disk away, half way). */
class FlakyDirectory extends DirectoryBackend {
  failing = false;
  override async delete(refs: readonly SourceRef[]): Promise<void> {
    if (this.failing) throw new Error('simulated failure half way');
    return super.delete(refs);
  }
}

/** Every file under `dir` whose bytes contain `needle` (case-insensitive). */
async function filesMentioning(dir: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(dir, { recursive: true })) {
    const path = join(dir, name);
    if (!(await stat(path)).isFile()) continue;
    if ((await readFile(path)).toString('latin1').toLowerCase().includes(needle)) found.push(path);
  }
  return found;
}

forEachBackend('erasure on request', (kind) => {
  let h: ApiHarness;
  let imap: FakeImapServer;
  let dir: string;
  let blobs: FlakyDirectory;
  let tenantId: string;

  before(async function () {
    this.timeout(180_000); // the first open of the embedded database takes long on a loaded machine
    await sharedStore(kind);
  });
  beforeEach(async () => {
    h = await openApiHarness(kind);
    imap = await startFakeImap({ users: [{ user: 'support@example.com', password: 'imap-pass' }] });
    dir = await mkdtemp(join(tmpdir(), 'mailroom-erasure-'));
    blobs = new FlakyDirectory(dir, false);
    await h.store
      .useSources(
        (query) => new MessageSources('directory', new Map<'directory', BlobBackend>([['directory', blobs]]), query),
      )
      .close();
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Erasure' })).body.id;
  });
  afterEach(async () => {
    if (!h) return;
    await h.close();
    await imap.close();
    await h.store.useSources((query) => MessageSources.inDatabase(query)).close();
    await rm(dir, { recursive: true, force: true });
    h = undefined as unknown as ApiHarness;
  });

  async function ingest(): Promise<{ serverId: string; destinationId: string }> {
    const serverId = await addPlainServer(h, tenantId, imap.port);
    const destinationId = await addSupportDestination(h, tenantId, serverId);
    imap.append('support@example.com', 'INBOX', rawMail({ from: `Customer <${CUSTOMER}>`, subject: 'my order' }));
    imap.append('support@example.com', 'INBOX', rawMail({ from: 'Other <other@example.net>', subject: 'kept' }));
    imap.append(
      'support@example.com',
      'INBOX',
      rawMail({ from: `C <Customer@Example.NET>`, cc: 'support@example.com', subject: 'again' }),
    );
    imap.append('support@example.com', 'INBOX', rawMail({ from: 'Other <other@example.net>', subject: 'kept too' }));
    await h.inbound.start();
    await eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages`);
      return res.body.messages?.length === 4 ? true : undefined;
    }, 20_000);
    await h.inbound.stop();
    // Outgoing mail to the customer (sent, and given up), and to someone else.
    for (const [to, status] of [
      [CUSTOMER, 'sent'],
      [CUSTOMER.toUpperCase(), 'failed'],
      ['other@example.net', 'sent'],
    ] as const) {
      const id = randomUUID();
      await h.store.query(
        `INSERT INTO outbound_messages (id, tenant_id, destination_id, server_id, status, message_id_header, subject, recipients, instance_id)
         VALUES ($1, $2, $3, $4, $5, $6, 'Re: your order', $7::jsonb, 'test-instance')`,
        [id, tenantId, destinationId, serverId, status, `<${id}@example.com>`, JSON.stringify([to])],
      );
    }
    return { serverId: serverId, destinationId: destinationId };
  }

  /** Rows of every table of the schema whose text mentions the address. */
  async function tablesMentioning(needle: string): Promise<string[]> {
    const tables = await h.store.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
    );
    const found: string[] = [];
    for (const { table_name } of tables) {
      const rows = await h.store.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${table_name}" t WHERE strpos(lower(convert_from(convert_to(t::text, 'UTF8'), 'UTF8')), $1) > 0`,
        [needle],
      );
      if (Number(rows[0]?.n) > 0) found.push(table_name);
    }
    // inbound_raw's bytes as text (bytea prints as hex in a row's text).
    const raw = await h.store.query<{ n: string }>(
      `SELECT count(*) AS n FROM inbound_raw WHERE strpos(lower(encode(raw, 'escape')), $1) > 0`,
      [needle],
    );
    if (Number(raw[0]?.n) > 0) found.push('inbound_raw (bytes)');
    return found;
  }

  it('leaves no trace of the address in any table, source or spool file, and answers the counts', async () => {
    await ingest();
    assert.ok((await tablesMentioning(CUSTOMER)).length > 0, 'the address is there before');
    assert.ok((await filesMentioning(dir, CUSTOMER)).length > 0);
    // Storage visibility: the tenant's messages and their sources, count and bytes.
    const storage = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/storage`);
    assert.equal(storage.status, 200, storage.raw);
    assert.equal(storage.body.messages.count, 4);
    assert.equal(storage.body.sources.count, 4);
    assert.equal(storage.body.sourcesByStore.directory.count, 4);
    const files = (await readdir(join(dir, tenantId))).map((f) => join(dir, tenantId, f));
    const bytes = (await Promise.all(files.map((f) => stat(f)))).reduce((a, s) => a + s.size, 0);
    assert.equal(storage.body.sources.bytes, bytes);
    await h.lifecycle.collectStorage();
    const metrics = await metricsRegistry.metrics();
    assert.match(
      metrics,
      new RegExp(`mailroom_stored_messages\\{tenant_id="${tenantId}",kind="source_bytes"\\} ${bytes}`),
    );
    // Details that quote the address outside the message rows: an SMTP reply in the trace of
    // another message, an audit entry as an older version wrote it (subject and sender).
    const otherOutbound = (
      await h.store.query<{ id: string }>(`SELECT id FROM outbound_messages WHERE recipients ? 'other@example.net'`)
    )[0]?.id as string;
    await h.store.trace.append([
      {
        tenantId,
        messageId: otherOutbound,
        type: 'smtp-attempt',
        detail: { response: `550 5.1.1 <${CUSTOMER.toUpperCase()}>: forwarding refused`, other: 'other@example.net' },
      },
    ]);
    await h.store.audit.record({
      tenantId,
      action: 'message.deleted',
      targetKind: 'inbound-message',
      targetId: randomUUID(),
      detail: { subject: 'my order', from: CUSTOMER, [CUSTOMER]: ['again', 'Customer@Example.net'] },
    });
    const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/erasures`, { address: 'Customer@example.net' });
    assert.equal(res.status, 200, res.raw);
    assert.equal(res.body.counts.messages, 2);
    assert.equal(res.body.counts.sources, 2);
    assert.equal(res.body.counts.deliveries, 2);
    assert.equal(res.body.counts.outbound, 2);
    assert.ok(res.body.finishedAt);
    assert.equal(res.body.counts.scrubbedEntries, 2);
    assert.deepEqual(res.body.requestedBy, {
      kind: 'token',
      tokenId: null,
      name: 'administrator (MAILROOM_API_TOKEN)',
    });
    assert.deepEqual(await tablesMentioning(CUSTOMER), []);
    const [scrubbedTrace] = await h.store.trace.timeline(tenantId, otherOutbound, false);
    assert.deepEqual(scrubbedTrace?.detail, {
      response: '550 5.1.1 <[erased]>: forwarding refused',
      other: 'other@example.net',
    });
    assert.deepEqual(await filesMentioning(dir, CUSTOMER), []);
    assert.deepEqual(await filesMentioning(h.spoolDir, CUSTOMER), []);
    // The rest stays.
    const left = await h.store.query<{ subject: string }>('SELECT subject FROM inbound_messages ORDER BY subject');
    assert.deepEqual(
      left.map((r) => r.subject),
      ['kept', 'kept too'],
    );
    assert.equal((await filesMentioning(dir, 'other@example.net')).length, 2);
    // The receipt, later: no address in it.
    const got = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/erasures/${res.body.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, res.body);
    assert.ok(!JSON.stringify(got.body).toLowerCase().includes('customer'));
    // Safe to repeat, and it erases again what matches now: nothing at first (a new receipt: the
    // first stays the record of what it did), then mail that arrived since.
    const again = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/erasures`, { address: CUSTOMER });
    assert.equal(again.status, 200, again.raw);
    assert.notEqual(again.body.id, res.body.id);
    assert.equal(again.body.counts.messages, 0);
    assert.ok(again.body.finishedAt);
    imap.append('support@example.com', 'INBOX', rawMail({ from: `Customer <${CUSTOMER}>`, subject: 'one more' }));
    const restarted = h.restartInbound();
    await restarted.start();
    await eventually(async () => {
      const n = await h.store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_messages WHERE tenant_id = $1', [
        tenantId,
      ]);
      return Number(n[0]?.n) === 3 ? true : undefined;
    }, 20_000);
    await restarted.stop();
    assert.ok((await tablesMentioning(CUSTOMER)).length > 0, 'the new mail holds the address');
    const third = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/erasures`, { address: CUSTOMER });
    assert.equal(third.body.counts.messages, 1);
    assert.equal(third.body.counts.sources, 1);
    assert.deepEqual(await tablesMentioning(CUSTOMER), []);
    assert.deepEqual(await filesMentioning(dir, CUSTOMER), []);
    // Audited: who asked, the erasure id and counts; never the address.
    const audit = await h.call<Obj>('GET', `/api/v1/audit?tenantId=${tenantId}`);
    const erasures = audit.body.entries.filter((e: Obj) => e.target.kind === 'erasure');
    assert.deepEqual(erasures.map((e: Obj) => [e.action, e.target.id, e.actor.name]).reverse(), [
      ['erasure.requested', res.body.id, 'administrator (MAILROOM_API_TOKEN)'],
      ['erasure.finished', res.body.id, 'administrator (MAILROOM_API_TOKEN)'],
      ['erasure.requested', again.body.id, 'administrator (MAILROOM_API_TOKEN)'],
      ['erasure.finished', again.body.id, 'administrator (MAILROOM_API_TOKEN)'],
      ['erasure.requested', third.body.id, 'administrator (MAILROOM_API_TOKEN)'],
      ['erasure.finished', third.body.id, 'administrator (MAILROOM_API_TOKEN)'],
    ]);
    assert.deepEqual(erasures[0].detail.counts, third.body.counts);
    assert.ok(!JSON.stringify(audit.body).toLowerCase().includes('customer@'));
    // The receipts, newest first (the console's retention page lists them); none in another tenant.
    const list = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/erasures`);
    assert.equal(list.status, 200, list.raw);
    assert.deepEqual(list.body.erasures, [third.body, again.body, res.body]);
    // Another tenant's id is not found.
    const other = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Other' })).body.id;
    assert.equal((await h.call<Obj>('GET', `/api/v1/tenants/${other}/erasures/${res.body.id}`)).status, 404);
    assert.deepEqual((await h.call<Obj>('GET', `/api/v1/tenants/${other}/erasures`)).body, { erasures: [] });
  });

  it('refuses an until that is not later than since, naming it', async () => {
    const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/erasures`, {
      address: CUSTOMER,
      since: '2026-05-02T00:00:00Z',
      until: '2026-05-01T00:00:00Z',
    });
    assert.equal(res.status, 400, res.raw);
    assert.equal(res.body.error.field, 'until');
  });

  it('is completed by repeating the request after it was cut short half way', async () => {
    await ingest();
    blobs.failing = true;
    const first = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/erasures`, { address: CUSTOMER });
    assert.equal(first.status, 200, first.raw);
    assert.equal(first.body.finishedAt, null, 'not complete while sources could not be deleted');
    assert.ok((await filesMentioning(dir, CUSTOMER)).length > 0);
    blobs.failing = false;
    const second = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/erasures`, { address: CUSTOMER });
    assert.equal(second.body.id, first.body.id);
    // The rows went the first time; the sources left behind go with the orphan sweep.
    await h.store.sources.sweep(new Date(Date.now() + 60_000));
    assert.deepEqual(await filesMentioning(dir, CUSTOMER), []);
    assert.deepEqual(await tablesMentioning(CUSTOMER), []);
    assert.ok(second.body.finishedAt);
    assert.equal(second.body.counts.messages, 2);
  });
});
