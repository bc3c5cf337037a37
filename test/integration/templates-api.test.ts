import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { newId } from '../../src/store/store.js';
import { FAST_INBOUND, forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { destinationBody, serverBody } from '../support/fixtures.js';
import { makeTemplateDir, responseFile, type TemplateDir } from '../support/template-dir.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const NOW = new Date('2024-03-05T22:30:00Z');

forEachBackend('response files API', (kind) => {
  let h: ApiHarness;
  let t: TemplateDir;
  let tenantId: string;
  let serverId: string;
  let destinationId: string;
  let base: string;

  beforeEach(async () => {
    t = await makeTemplateDir({
      'support.xml': responseFile(
        [
          '<Response Name="Ack">Dear $From.Name$, re "$Subject$" ($CallID$) of $Received$. $Agent.ChatName$, $ServiceGroup$ &lt;$ServiceGroup.Email$&gt; $Date$ $Unknown$</Response>',
          '<Group Name="HTML" Expanded="true"><Response Name="Welcome" Src="html/welcome.htm" /></Group>',
          '<Group Name="Empty"><Group Name="Inner" /></Group>',
        ].join('\n'),
      ),
      'html/welcome.htm': '<p>$Subject$ <img src="logo.png"></p>',
      'html/logo.png': PNG,
      'billing.xml': responseFile('<Response Name="Paid">Paid on $Date$</Response>'),
    });
    h = await openApiHarness(kind, FAST_INBOUND, {}, { dir: t.dir, now: () => NOW });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Acme' })).body.id as string;
    serverId = (await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, serverBody(1))).body.id as string;
    const destination = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/destinations`,
      destinationBody(1, serverId, { name: 'Support & Sales' }),
    );
    destinationId = destination.body.id as string;
    base = `/api/v1/tenants/${tenantId}/destinations/${destinationId}/responses`;
  });
  afterEach(async () => {
    await h.close();
    await t.remove();
  });

  async function storeMessage(subject: string, tenant = tenantId, server = serverId): Promise<string> {
    const id = newId();
    await h.store.messages.insertOnce(
      {
        id,
        tenantId: tenant,
        serverId: server,
        mailbox: 'INBOX',
        uidValidity: 1,
        uid: Math.floor(Math.random() * 1e9),
        status: 'routed',
        quarantineReason: null,
        messageIdHeader: `<${id}@example.com>`,
        dedupeKey: id,
        conversationId: randomUUID(),
        subject,
        fromAddress: 'zoe@example.com',
        fromName: 'Zoë',
        recipients: { to: [], cc: [], deliveredTo: [], xOriginalTo: [] },
        sentAt: null,
        receivedAt: new Date('2024-03-04T23:15:00Z'),
        size: 100,
        classification: { autoReply: false, bounce: false, loop: false, reasons: [] },
        inReplyTo: null,
        references: [],
        bodyText: 'hello',
        bodyHtml: null,
        attachments: [],
      },
      null,
    );
    return id;
  }

  it('lists every response file as a tree by default, hiding empty groups', async () => {
    const res = await h.call<Obj>('GET', base);
    assert.equal(res.status, 200, res.raw);
    assert.deepEqual(res.body.settings, { files: null, locale: null, timeZone: null });
    assert.deepEqual(
      res.body.responseFiles.map((f: Obj) => f.file),
      ['billing.xml', 'support.xml'],
    );
    const support = res.body.responseFiles[1].items as Obj[];
    assert.deepEqual(support, [
      { type: 'response', name: 'Ack', description: support[0]?.description, kind: 'text', src: null, available: true },
      {
        type: 'group',
        name: 'HTML',
        expanded: true,
        items: [
          {
            type: 'response',
            name: 'Welcome',
            description: '',
            kind: 'html',
            src: 'html/welcome.htm',
            available: true,
          },
        ],
      },
    ]);
    assert.deepEqual(res.body.problems, []);
  });

  it('renders with the incoming message, the destination, the agent and the locale', async () => {
    const messageId = await storeMessage('Invoice <img src=x onerror=alert(1)>\r\nBcc: evil@example.com');
    const res = await h.call<Obj>('POST', `${base}/render`, {
      file: 'support.xml',
      name: 'Ack',
      messageId,
      agent: { name: 'Ann Agent' },
      locale: 'de-DE',
      timeZone: 'Europe/Berlin',
    });
    assert.equal(res.status, 200, res.raw);
    assert.deepEqual(res.body, {
      text:
        `Dear Zoë, re "Invoice <img src=x onerror=alert(1)> Bcc: evil@example.com" (${messageId}) of 05.03.24, 00:15. ` +
        'Ann Agent, Support & Sales <support1@example.com> 05.03.24 $Unknown$',
      attachments: [],
      unknownIdentifiers: ['$Unknown$'],
    });

    const htmlRes = await h.call<Obj>('POST', `${base}/render`, { file: 'support.xml', name: 'Welcome', messageId });
    assert.equal(htmlRes.status, 200, htmlRes.raw);
    const [attachment] = htmlRes.body.attachments as Obj[];
    assert.equal(
      htmlRes.body.html,
      `<p>Invoice &lt;img src=x onerror=alert(1)&gt; Bcc: evil@example.com <img src="cid:${attachment?.cid}"></p>`,
    );
    assert.deepEqual(attachment, {
      filename: 'logo.png',
      contentType: 'image/png',
      cid: attachment?.cid,
      contentBase64: PNG.toString('base64'),
    });
  });

  it('chooses the files of a destination and uses its locale and time zone', async () => {
    const put = await h.call<Obj>('PUT', `${base}/files`, {
      files: ['billing.xml'],
      locale: 'en-US',
      timeZone: 'America/New_York',
    });
    assert.equal(put.status, 200, put.raw);
    assert.deepEqual(put.body, { files: ['billing.xml'], locale: 'en-US', timeZone: 'America/New_York' });
    const tree = await h.call<Obj>('GET', base);
    assert.deepEqual(
      tree.body.responseFiles.map((f: Obj) => f.file),
      ['billing.xml'],
    );
    const paid = await h.call<Obj>('POST', `${base}/render`, { file: 'billing.xml', name: 'Paid' });
    assert.equal(paid.body.text, 'Paid on 3/5/24');
    const hidden = await h.call<Obj>('POST', `${base}/render`, { file: 'support.xml', name: 'Ack' });
    assert.equal(hidden.status, 404);
    assert.equal(hidden.body.error.code, 'TEMPLATE_NOT_FOUND');

    const filesOnly = await h.call<Obj>('PUT', `${base}/files`, { files: null });
    assert.deepEqual(filesOnly.body, { files: null, locale: 'en-US', timeZone: 'America/New_York' }, 'locale kept');
    const unknown = await h.call<Obj>('PUT', `${base}/files`, { files: ['nope.xml'] });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.field, 'files');
    const badZone = await h.call<Obj>('PUT', `${base}/files`, { files: null, timeZone: 'Mars/Olympus' });
    assert.equal(badZone.body.error.field, 'timeZone');
  });

  it('answers not found for unknown files, responses, messages and other tenants', async () => {
    const cases: Array<[Obj, string]> = [
      [{ file: 'nope.xml', name: 'Ack' }, 'TEMPLATE_NOT_FOUND'],
      [{ file: 'support.xml', name: 'Nope' }, 'TEMPLATE_NOT_FOUND'],
      [{ file: 'support.xml', name: 'Ack', messageId: randomUUID() }, 'MESSAGE_NOT_FOUND'],
    ];
    for (const [body, code] of cases) {
      const res = await h.call<Obj>('POST', `${base}/render`, body);
      assert.equal(res.body.error?.code, code, JSON.stringify(body));
    }
    const other = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Other' })).body.id as string;
    const otherServer = (await h.call<Obj>('POST', `/api/v1/tenants/${other}/servers`, serverBody(2))).body
      .id as string;
    const foreign = await storeMessage('secret subject of another tenant', other, otherServer);
    const res = await h.call<Obj>('POST', `${base}/render`, { file: 'support.xml', name: 'Ack', messageId: foreign });
    assert.equal(res.body.error?.code, 'MESSAGE_NOT_FOUND', "another tenant's message is not visible");
    const token = (await h.call<Obj>('POST', `/api/v1/tenants/${other}/tokens`, { name: 'other' })).body
      .token as string;
    const cross = await h.call<Obj>('GET', base, undefined, token);
    assert.equal(cross.body.error?.code, 'TENANT_NOT_FOUND');
  });

  it('renders the edited file after a reload; a broken edit keeps the last good one and is reported', async () => {
    await t.write('billing.xml', responseFile('<Response Name="Paid">Paid (v2)</Response>'));
    await h.templates.reload();
    assert.equal(
      (await h.call<Obj>('POST', `${base}/render`, { file: 'billing.xml', name: 'Paid' })).body.text,
      'Paid (v2)',
    );
    await t.write('billing.xml', responseFile('<Response Name="Paid">Paid (v3)'));
    await h.templates.reload();
    assert.equal(
      (await h.call<Obj>('POST', `${base}/render`, { file: 'billing.xml', name: 'Paid' })).body.text,
      'Paid (v2)',
    );
    const problems = (await h.call<Obj>('GET', base)).body.problems as Obj[];
    assert.deepEqual(
      problems.map((p) => [p.file, p.line, p.severity]),
      [['billing.xml', 4, 'error']],
    );
  });

  it('chooses between responses of one name in different groups by their group, and never guesses', async () => {
    await t.write(
      'languages.xml',
      responseFile(
        [
          '<Group Name="English"><Response Name="Greeting">Hello</Response></Group>',
          '<Group Name="German"><Response Name="Greeting">Guten Tag</Response>',
          '<Response Name="Greeting">Grüß Gott</Response></Group>',
        ].join('\n'),
      ),
    );
    await h.templates.reload();
    const render = (body: Obj) => h.call<Obj>('POST', `${base}/render`, { file: 'languages.xml', ...body });
    const ambiguous = await render({ name: 'Greeting' });
    assert.equal(ambiguous.status, 400, ambiguous.raw);
    assert.equal(ambiguous.body.error.field, 'group');
    assert.match(ambiguous.body.error.message, /'English', 'German'/);
    assert.equal((await render({ name: 'Greeting', group: ['German'] })).body.text, 'Guten Tag');
    assert.equal((await render({ name: 'Greeting', group: ['English'] })).body.text, 'Hello');
    const nowhere = await render({ name: 'Greeting', group: [] });
    assert.equal(nowhere.status, 404, nowhere.raw);
    assert.equal(nowhere.body.error.field, 'group');
  });

  it('shows agents only usable responses with usableOnly, hiding the groups left empty', async () => {
    await t.write(
      'billing.xml',
      responseFile(
        '<Response Name="Paid">Paid</Response>\n<Group Name="Broken"><Response Name="Gone" Src="missing.htm" /></Group>',
      ),
    );
    await h.templates.reload();
    const billing = async (query: string): Promise<Obj[]> =>
      ((await h.call<Obj>('GET', `${base}${query}`)).body.responseFiles as Obj[]).find((f) => f.file === 'billing.xml')
        ?.items as Obj[];
    const all = await billing('');
    assert.deepEqual(
      all.map((i) => [i.type, i.name]),
      [
        ['response', 'Paid'],
        ['group', 'Broken'],
      ],
    );
    assert.equal(all[1]?.items[0]?.available, false, 'listed, marked unusable');
    const usable = await billing('?usableOnly=true');
    assert.deepEqual(
      usable.map((i) => [i.type, i.name]),
      [['response', 'Paid']],
    );
  });
});
