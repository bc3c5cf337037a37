import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { FakeGraph } from '../../src/harness/fake-graph/index.js';
import type { FakeIdp } from '../../src/harness/fake-idp/index.js';
import { openGraphFixture, type GraphFixture } from '../support/graph-fixture.js';
import { FAST_INBOUND, forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { eventually } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const MAILBOX = 'desk@contoso.test';
const APP = 'mailroom-graph-app';
const SECRET = `graph-${randomBytes(6).toString('hex')}`;

function mime(n: number): string {
  return [
    `From: Customer ${n} <customer${n}@example.net>`,
    `To: ${MAILBOX}`,
    `Subject: graph ${n}`,
    `Message-ID: <graph-inbound-${n}@example.net>`,
    'Date: Tue, 08 Dec 2026 01:00:00 +0000',
    '',
    `Body ${n}`,
    '',
  ].join('\r\n');
}

/**
 * A Microsoft Graph mailbox (`protocol: graph`) read through delta queries from the fake Graph,
 * with an app-only token from the fake identity provider: every message routed exactly once,
 * also when a page fails half-way (the connection reset after some of its batches committed) and
 * when Graph forgets the synchronisation state (410 SyncStateNotFound).
 */
forEachBackend('Microsoft Graph inbound (delta queries)', (kind) => {
  let h: ApiHarness;
  let idp: FakeIdp;
  let graph: FakeGraph;
  let fixture: GraphFixture;
  let tenantId: string;
  let serverId: string;

  beforeEach(async () => {
    fixture = await openGraphFixture(MAILBOX, APP, SECRET);
    ({ idp, graph } = fixture);
    // Small batches: a page of 20 commits in 4 transactions.
    h = await openApiHarness(kind, { ...FAST_INBOUND, batchMaxCount: 5 }, {}, {}, { identityProviderCa: idp.ca });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Graph' })).body.id;
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-40).join('\n')}\n`);
    }
    await h.close();
    await fixture.close();
  });

  async function addServer(postProcess = 'seen'): Promise<void> {
    const server = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      fixture.serverBody('M365 desk', { postProcess }),
    );
    assert.equal(server.status, 201, server.raw);
    assert.equal(server.body.protocol, 'graph');
    assert.equal(server.body.imap.port, graph.port);
    serverId = server.body.id;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Desk',
      address: MAILBOX,
      serverId,
    });
    assert.equal(destination.status, 201, destination.raw);
  }

  /** Messages stored and deliveries made, and any message delivered more than once. */
  async function counts(): Promise<{ messages: number; deliveries: number; twice: number }> {
    const [m] = await h.store.query<{ n: string }>(`SELECT count(*) AS n FROM inbound_messages WHERE server_id = $1`, [
      serverId,
    ]);
    const [d] = await h.store.query<{ n: string }>(`SELECT count(*) AS n FROM inbound_deliveries`);
    const [t] = await h.store.query<{ n: string }>(
      `SELECT count(*) AS n FROM (SELECT message_id FROM inbound_deliveries GROUP BY message_id HAVING count(*) > 1) x`,
    );
    return { messages: Number(m?.n), deliveries: Number(d?.n), twice: Number(t?.n) };
  }

  async function routed(n: number): Promise<void> {
    await eventually(async () => ((await counts()).deliveries >= n ? true : undefined), 30_000);
    // A little longer: nothing more arrives.
    h.inbound.service.poke(serverId);
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.deepEqual(await counts(), { messages: n, deliveries: n, twice: 0 });
  }

  /** `$value` requests per message id. */
  function sourceReads(): Map<string, number> {
    const reads = new Map<string, number>();
    for (const r of graph.requests) {
      const id = /\/messages\/([^/]+)\/\$value$/.exec(r.path)?.[1];
      if (id) reads.set(id, (reads.get(id) ?? 0) + 1);
    }
    return reads;
  }

  it('routes each message once, marks it read through Graph, and takes new mail on the next poll', async function () {
    this.timeout(60_000);
    const ids = Array.from({ length: 12 }, (_, i) => graph.deliver(MAILBOX, mime(i)));
    await addServer('seen');
    await h.inbound.start();
    await routed(12);
    await eventually(async () => (graph.store.list(MAILBOX).every((m) => m.isRead) ? true : undefined));
    // Read messages come back in the next delta round as updated: recognised, never fetched again.
    graph.deliver(MAILBOX, mime(100));
    await routed(13);
    for (const id of ids) assert.equal(sourceReads().get(id), 1, 'each source is read once');
    const status = (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`)).body;
    assert.equal(status.inbound.state, 'polling', JSON.stringify(status.inbound));
    assert.equal(status.inbound.newMail.by, 'poll');
    const test = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers/${serverId}/test`, {});
    assert.equal(test.body.imap.ok, true, test.raw);
    assert.match(test.body.imap.detail, /Microsoft Graph opened the mailbox/);
  });

  it('a page that fails half-way is read again from its link without routing anything twice', async function () {
    this.timeout(60_000);
    const ids = Array.from({ length: 20 }, (_, i) => graph.deliver(MAILBOX, mime(i)));
    // The 13th source (third batch of the first page of 20) resets the connection, once.
    graph.fault({ path: new RegExp(`/messages/${ids[12]}/\\$value$`), status: 0 });
    await addServer('seen');
    await h.inbound.start();
    await routed(20);
    const reads = sourceReads();
    // The first two batches (10 messages) were committed with the page's own link: read once.
    for (const id of ids.slice(0, 10)) assert.equal(reads.get(id), 1);
    assert.equal(reads.get(ids[12] as string), 2, 'the failed one was asked again');
    const [cp] = await h.store.query<{ delta_link: string; uid_validity: string }>(
      `SELECT delta_link, uid_validity FROM mailbox_checkpoints WHERE server_id = $1`,
      [serverId],
    );
    assert.match(cp?.delta_link ?? '', /\$deltatoken=/, 'the checkpoint is the delta link');
  });

  it('a 410 SyncStateNotFound reads the folder again, routes only the new mail, and raises an alert', async function () {
    this.timeout(60_000);
    for (let i = 0; i < 8; i++) graph.deliver(MAILBOX, mime(i));
    await addServer('move:archive');
    await h.inbound.start();
    await routed(8);
    assert.equal(graph.store.list(MAILBOX, 'archive').length, 8, 'moved through Graph');
    // Put back in the Inbox (as a person would) and the state forgotten: all of it is listed again.
    for (const m of graph.store.list(MAILBOX, 'archive')) graph.store.move(m, 'inbox');
    graph.store.resetSyncState();
    graph.deliver(MAILBOX, mime(50));
    h.inbound.service.poke(serverId);
    await routed(9);
    const alerts = await h.store.query<{ kind: string }>(`SELECT kind FROM alerts WHERE server_id = $1`, [serverId]);
    assert.ok(
      alerts.some((a) => a.kind === 'graph-sync-reset'),
      JSON.stringify(alerts),
    );
  });
});
