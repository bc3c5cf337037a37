import assert from 'node:assert/strict';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
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

forEachBackend("a destination's seq numbers", (kind) => {
  let h: ApiHarness;
  let imap: FakeImapServer;

  before(async function () {
    this.timeout(180_000); // the first open of the embedded database takes long on a loaded machine
    await sharedStore(kind);
  });
  beforeEach(async () => {
    h = await openApiHarness(kind);
    imap = await startFakeImap({ users: [{ user: 'support@example.com', password: 'imap-pass' }] });
  });
  afterEach(async () => {
    await h.close();
    await imap.close();
  });

  it('are never given again after the newest messages were erased (pull cursors and webhook keys stay right)', async () => {
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Seq' })).body.id as string;
    const serverId = await addPlainServer(h, tenantId, imap.port);
    const destinationId = await addSupportDestination(h, tenantId, serverId);
    const feed = `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages`;
    const seqsAfter = async (after: number): Promise<Array<{ seq: number; subject: string }>> => {
      const res = await h.call<Obj>('GET', `${feed}?after=${after}`);
      return (res.body.messages as Obj[]).map((m) => ({ seq: m.seq as number, subject: m.subject as string }));
    };
    imap.append('support@example.com', 'INBOX', rawMail({ from: 'Other <other@example.net>', subject: 'first' }));
    imap.append('support@example.com', 'INBOX', rawMail({ from: 'Jane <jane@example.net>', subject: 'second' }));
    imap.append('support@example.com', 'INBOX', rawMail({ from: 'Jane <jane@example.net>', subject: 'third' }));
    await h.inbound.start();
    await eventually(async () => ((await seqsAfter(0)).length === 3 ? true : undefined), 20_000);
    // The agent has read up to 3; then Jane's mail (the two newest) is erased.
    const erased = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/erasures`, { address: 'jane@example.net' });
    assert.equal(erased.status, 200, erased.raw);
    assert.equal(erased.body.counts.deliveries, 2);
    imap.append('support@example.com', 'INBOX', rawMail({ from: 'New <new@example.net>', subject: 'fourth' }));
    const fresh = await eventually(async () => {
      const got = await seqsAfter(3);
      return got.length === 1 ? got : undefined;
    }, 20_000);
    // Numbered 4, not 2 again: the cursor after 3 finds it.
    assert.deepEqual(fresh, [{ seq: 4, subject: 'fourth' }]);
    assert.deepEqual(
      (await seqsAfter(0)).map((m) => m.seq),
      [1, 4],
    );
  });
});
