import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { loopbackServerBody } from '../support/fixtures.js';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { isPostgresReachable } from '../support/database.js';
import { eventually, rawMail } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const USER = 'support@example.com';
/** The longest the main event loop may stall while poison goes through the pipeline, ms. */
const MAX_LOOP_DELAY_MS = 200;

/** A plain message with a body of about `bytes` bytes (40 MB: over the 25 MiB default limit). */
function hugeMessage(bytes: number): string {
  const line = `${'x'.repeat(998)}\r\n`;
  return rawMail({ subject: 'huge', body: line.repeat(Math.ceil(bytes / line.length)) });
}

/** A message whose multiparts nest `depth` deep (each part opens the next one). */
function deeplyNested(depth: number): string {
  const head = 'From: a@example.net\r\nTo: support@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n';
  const parts: string[] = [];
  for (let i = 0; i < depth; i++) parts.push(`Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`);
  return head + parts.join('') + 'Content-Type: text/plain\r\n\r\ninnermost\r\n';
}

/**
 * Poison through the whole pipeline (fake IMAP → fetch → parse → store): a 40 MB message and one
 * with MIME nested 5,000 deep are quarantined with their reasons, the messages around them are
 * routed, and the main event loop never stalls for more than 200 ms meanwhile.
 */
describe('inbound poison messages through the whole pipeline', function () {
  this.timeout(120_000);
  let h: ApiHarness;
  let imap: FakeImapServer;

  before(async () => {
    h = await openApiHarness((await isPostgresReachable()) ? 'postgres' : 'pglite');
    imap = await startFakeImap({ users: [{ user: USER, password: 'imap-pass' }] });
  });

  after(async () => {
    await h?.close();
    await imap?.close();
  });

  it('quarantines a 40 MB message and a 5,000-deep MIME message, routes the next one, keeps the loop free', async () => {
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Poison' })).body.id as string;
    const server = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      loopbackServerBody('Main', imap.port, USER, 'imap-pass'),
    );
    assert.equal(server.status, 201, server.raw);
    const serverId = server.body.id as string;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: USER,
      serverId,
    });
    const feed = async (): Promise<Obj[]> =>
      (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/messages`)).body
        .messages as Obj[];

    // Built before the loop is watched: making 40 MB of test data is not the engine's work.
    imap.append(USER, 'INBOX', rawMail({ subject: 'before' }));
    imap.append(USER, 'INBOX', hugeMessage(40 * 1024 * 1024));
    imap.append(USER, 'INBOX', deeplyNested(5000));
    imap.append(USER, 'INBOX', rawMail({ subject: 'after' }));

    const histogram = monitorEventLoopDelay({ resolution: 10 });
    histogram.enable();
    try {
      await h.inbound.start();
      const routed = await eventually(async () => {
        const list = await feed();
        return list.length >= 2 ? list : undefined;
      }, 60_000);
      assert.deepEqual(
        routed.map((m) => m.subject),
        ['before', 'after'],
      );
      await eventually(async () => (h.inbound.status(serverId).lastUid.INBOX === 4 ? true : undefined), 30_000);
    } finally {
      histogram.disable();
    }
    const maxDelayMs = histogram.max / 1e6;
    assert.ok(maxDelayMs < MAX_LOOP_DELAY_MS, `the event loop stalled for ${maxDelayMs.toFixed(0)} ms`);

    const quarantined = await h.call<Obj>(
      'GET',
      `/api/v1/tenants/${tenantId}/servers/${serverId}/messages?status=quarantined`,
    );
    const reasons = (quarantined.body.messages as Obj[]).map((m) => String(m.quarantineReason).split(':')[0]).sort();
    assert.deepEqual(reasons, ['mime-too-deep', 'too-large']);
    const huge = (quarantined.body.messages as Obj[]).find((m) => String(m.quarantineReason).startsWith('too-large'));
    assert.equal(huge?.subject, 'huge', 'the subject of a message too large to fetch is read from its header');

    // Quarantined messages are not fetched again in a loop: the next message goes through too.
    imap.append(USER, 'INBOX', rawMail({ subject: 'later' }));
    await eventually(async () => ((await feed()).length >= 3 ? true : undefined), 30_000);
    assert.deepEqual(
      (await feed()).map((m) => m.subject),
      ['before', 'after', 'later'],
    );
  });
});
