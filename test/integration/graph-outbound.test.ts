import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { FakeGraph } from '../../src/harness/fake-graph/index.js';
import type { FakeIdp } from '../../src/harness/fake-idp/index.js';
import { openGraphFixture, type GraphFixture } from '../support/graph-fixture.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { eventually } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const MAILBOX = 'desk@contoso.test';
const APP = 'mailroom-graph-sender';
const SECRET = `graph-${randomBytes(6).toString('hex')}`;

/**
 * Sending through Microsoft Graph (`protocol: graph`): the spooled MIME message goes to sendMail
 * as it was composed; Graph's refusals go through the same classification as SMTP's (a 429 storm
 * pauses the account for at least Retry-After, a 503 outage keeps the mail spooled) and the
 * hourly rate limit holds as for SMTP.
 */
forEachBackend('Microsoft Graph outbound (sendMail)', (kind) => {
  let h: ApiHarness;
  let idp: FakeIdp;
  let graph: FakeGraph;
  let fixture: GraphFixture;
  let tenantId: string;
  let outboundUrl: string;

  beforeEach(async () => {
    fixture = await openGraphFixture(MAILBOX, APP, SECRET);
    ({ idp, graph } = fixture);
    h = await openApiHarness(kind, undefined, { probeIntervalMs: 100 }, {}, { identityProviderCa: idp.ca });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Graph out' })).body.id;
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-40).join('\n')}\n`);
    }
    await h.close();
    await fixture.close();
  });

  async function addServer(rateLimitPerHour = 0): Promise<string> {
    const server = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      fixture.serverBody('M365 sender', { enabled: false }, { rateLimitPerHour }),
    );
    assert.equal(server.status, 201, server.raw);
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Desk',
      address: MAILBOX,
      fromText: 'Contoso Desk',
      serverId: server.body.id,
    });
    assert.equal(destination.status, 201, destination.raw);
    outboundUrl = `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/outbound`;
    await h.outbound.start();
    return server.body.id as string;
  }

  async function send(subject: string, extra: Obj = {}): Promise<string> {
    const res = await h.call<Obj>('POST', outboundUrl, {
      to: ['customer@example.net'],
      subject,
      text: subject,
      ...extra,
    });
    assert.equal(res.status, 202, res.raw);
    return res.body.id as string;
  }

  async function sent(id: string, timeoutMs = 20_000): Promise<void> {
    await eventually(
      async () => ((await h.call<Obj>('GET', `${outboundUrl}/${id}`)).body.status === 'sent' ? true : undefined),
      timeoutMs,
    );
  }

  const subjectOf = (raw: Buffer): string | undefined => /^Subject: (.*)$/m.exec(raw.toString('utf8'))?.[1];

  it('sends the composed MIME message as it is, a blind copy added as Bcc', async function () {
    this.timeout(60_000);
    const serverId = await addServer();
    const id = await send('hello graph', { bcc: ['boss@example.net'] });
    await sent(id);
    assert.equal(graph.sent.length, 1);
    const raw = graph.sent[0]?.raw.toString('utf8') ?? '';
    assert.match(raw, /^From: "?Contoso Desk"? <desk@contoso\.test>/m);
    assert.match(raw, /^Message-ID: <[^>]+>/m);
    assert.match(raw, /^Bcc: boss@example\.net/m, 'the envelope-only recipient is named for Graph');
    const test = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers/${serverId}/test`, {});
    assert.equal(test.body.smtp.ok, true, test.raw);
    assert.match(test.body.smtp.detail, /sendMail/);
  });

  it('a 429 storm pauses the account for at least Retry-After, then sends everything once, in order', async function () {
    this.timeout(60_000);
    graph.fault({ method: 'POST', path: /\/sendMail$/, status: 429, retryAfterSeconds: 1, times: 3 });
    const serverId = await addServer();
    const ids = [await send('first'), await send('second')];
    for (const id of ids) await sent(id, 30_000);
    assert.deepEqual(
      graph.sent.map((m) => subjectOf(m.raw)),
      ['first', 'second'],
    );
    const posts = graph.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/sendMail'));
    assert.equal(posts.length, 5, 'three refused, two taken');
    for (let i = 1; i < 4; i++) {
      const gap = (posts[i]?.at ?? 0) - (posts[i - 1]?.at ?? 0);
      assert.ok(gap >= 950, `try ${i + 1} came ${gap} ms after a Retry-After of 1 s`);
    }
    assert.deepEqual(await h.outbound.deadLetters(tenantId, serverId), []);
  });

  it('an outage (503) keeps the mail spooled, a refused message (400) is dead-lettered alone', async function () {
    this.timeout(60_000);
    graph.fault({ method: 'POST', path: /\/sendMail$/, status: 503, times: 2 });
    const serverId = await addServer();
    const first = await send('during the outage');
    await eventually(async () => (h.outbound.status(serverId).queue?.state === 'paused' ? true : undefined));
    assert.ok((await h.outbound.spool.list(serverId)).length >= 1, 'spooled while Graph is down');
    await sent(first);
    graph.fault({ method: 'POST', path: /\/sendMail$/, status: 400, code: 'ErrorMimeContentInvalidBase64String' });
    const refused = await send('refused');
    const after = await send('after');
    await sent(after);
    const status = (await h.call<Obj>('GET', `${outboundUrl}/${refused}`)).body;
    assert.equal(status.status, 'failed', JSON.stringify(status));
    assert.deepEqual(
      graph.sent.map((m) => subjectOf(m.raw)),
      ['during the outage', 'after'],
    );
  });

  it('keeps the hourly rate limit', async function () {
    this.timeout(60_000);
    const serverId = await addServer(2);
    const ids = [await send('one'), await send('two'), await send('three')];
    await sent(ids[0] as string);
    await sent(ids[1] as string);
    await eventually(async () => (h.outbound.status(serverId).queue?.rateLimitedUntil ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(graph.sent.length, 2, 'the third waits for a place in the hour');
  });
});
