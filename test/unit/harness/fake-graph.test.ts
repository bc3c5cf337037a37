import assert from 'node:assert/strict';
import { startFakeGraph, type FakeGraph } from '../../../src/harness/fake-graph/index.js';
import { GraphClient, GraphError, retryAfterMsOf } from '../../../src/shared/graph/graph-client.js';

const USER = 'desk@contoso.example';
const TOKEN = 'at.valid';

function mime(n: number, to = USER): Buffer {
  return Buffer.from(
    [
      `From: Customer ${n} <customer${n}@example.com>`,
      `To: ${to}`,
      `Subject: message ${n}`,
      `Message-ID: <graph-${n}@example.com>`,
      '',
      `Body ${n}`,
      '',
    ].join('\r\n'),
  );
}

/** Every page of a round from `link`: ids seen, removed ids, and the delta link it ends with. */
async function round(client: GraphClient, link: string, pageSize: number) {
  const ids: string[] = [];
  const removed: string[] = [];
  let pages = 0;
  for (;;) {
    const page = await client.delta(link, pageSize);
    pages += 1;
    assert.ok(page.nextLink === null || page.deltaLink === null, 'a page never has both links');
    for (const item of page.items) (item.removed ? removed : ids).push(item.id);
    if (page.deltaLink) return { ids, removed, pages, deltaLink: page.deltaLink };
    assert.ok(page.nextLink);
    link = page.nextLink;
  }
}

describe('fake Microsoft Graph with the Graph client', () => {
  let graph: FakeGraph;
  let client: GraphClient;

  beforeEach(async () => {
    graph = await startFakeGraph({ users: [USER, 'other@contoso.example'], verifyToken: (_u, t) => t === TOKEN });
    client = new GraphClient({
      baseUrl: graph.url,
      mailbox: USER,
      accessToken: TOKEN,
      ca: graph.ca,
      maxSourceBytes: 1e6,
    });
  });
  afterEach(async () => {
    await graph.close();
  });

  it('pages a first round with next links, ends with a delta link that later lists only the changes', async () => {
    const ids = Array.from({ length: 25 }, (_, i) => graph.deliver(USER, mime(i)));
    const first = await round(client, client.deltaStart('inbox'), 10);
    assert.deepEqual(first.ids, ids);
    assert.equal(first.pages, 3);
    const next = await round(client, first.deltaLink, 10);
    assert.deepEqual(next.ids, []);
    const late = graph.deliver(USER, mime(99));
    const gone = ids[3] as string;
    await client.delete(gone);
    const third = await round(client, next.deltaLink, 10);
    assert.deepEqual(third.ids, [late]);
    assert.deepEqual(third.removed, [gone]);
  });

  it('a next link resumes its round where it was: a page asked again lists the same messages', async () => {
    for (let i = 0; i < 5; i++) graph.deliver(USER, mime(i));
    const page1 = await client.delta(client.deltaStart('inbox'), 2);
    assert.ok(page1.nextLink);
    const a = await client.delta(page1.nextLink, 2);
    const b = await client.delta(page1.nextLink, 2);
    assert.deepEqual(
      a.items.map((i) => i.id),
      b.items.map((i) => i.id),
    );
  });

  it('serves the MIME source, marks read, moves and deletes', async () => {
    const id = graph.deliver(USER, mime(1));
    assert.deepEqual(await client.source(id), mime(1));
    await client.markRead(id);
    assert.equal(graph.store.get(USER, id)?.isRead, true);
    await client.move(id, 'archive');
    assert.equal(graph.store.list(USER, 'archive').length, 1);
    await client.delete(id);
    await client.delete(id); // already gone: no error
    assert.equal(graph.store.list(USER, 'archive').length, 0);
  });

  it('answers 410 SyncStateNotFound to a token issued before a reset', async () => {
    graph.deliver(USER, mime(1));
    const first = await round(client, client.deltaStart('inbox'), 10);
    graph.store.resetSyncState();
    await assert.rejects(client.delta(first.deltaLink), (err: unknown) => {
      assert.ok(err instanceof GraphError);
      assert.equal(err.status, 410);
      assert.equal(err.syncStateLost, true);
      return true;
    });
  });

  it('answers 429 with Retry-After, and 401 to a bad token', async () => {
    graph.fault({ path: /\/delta$/, status: 429, retryAfterSeconds: 7 });
    await assert.rejects(client.delta(client.deltaStart('inbox')), (err: unknown) => {
      assert.ok(err instanceof GraphError);
      assert.equal(err.status, 429);
      assert.equal(err.retryAfterMs, 7000);
      assert.equal(err.responseCode, 421);
      return true;
    });
    const bad = new GraphClient({
      baseUrl: graph.url,
      mailbox: USER,
      accessToken: 'nope',
      ca: graph.ca,
      maxSourceBytes: 1e6,
    });
    await assert.rejects(
      bad.probe(),
      (err: unknown) => err instanceof GraphError && err.unauthorized && err.code === 'EAUTH',
    );
  });

  it('takes sendMail as base64 MIME (202) and delivers it to a local mailbox named in its headers', async () => {
    await client.sendMime(mime(5, 'other@contoso.example'));
    assert.equal(graph.sent.length, 1);
    assert.deepEqual(graph.sent[0]?.raw, mime(5, 'other@contoso.example'));
    assert.equal(graph.store.list('other@contoso.example', 'inbox').length, 1);
    assert.equal(graph.store.list(USER, 'sentitems').length, 1);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    assert.equal(retryAfterMsOf('3'), 3000);
    assert.equal(retryAfterMsOf(undefined), null);
    assert.equal(retryAfterMsOf(new Date(10_000).toUTCString(), 4_000), 6_000);
  });
});
