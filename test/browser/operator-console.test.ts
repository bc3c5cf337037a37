import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type FrameLocator, type Page } from 'playwright-core';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { eventually, rawMail } from '../support/mail.js';
import { skipWithout } from '../support/requirements.js';
import { routedMessageRow, routeMessages } from '../support/routed-messages.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** Debian's chromium (never a downloaded browser); another path for a local run in MAILROOM_TEST_CHROMIUM. */
const CHROMIUM = process.env.MAILROOM_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = join(process.cwd(), 'test-output', 'screenshots');

/** A 1×1 PNG (red), the `cid:` image of the hostile mail. */
const PIXEL_PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';

/**
 * A mail that tries everything a mail should not do in an operator's browser. Every address it
 * reaches for is the test's "web" server on 127.0.0.1, which counts what it is asked for.
 */
function hostileMail(web: string): string {
  const html = [
    '<html><head>',
    `<meta http-equiv="refresh" content="0;url=${web}/refresh">`,
    `<link rel="stylesheet" href="${web}/style.css">`,
    `<style>@import url(${web}/import.css); p.tinted { color: rgb(200, 0, 0) } .bg { background-image: url(${web}/sheet-bg.png) }</style>`,
    `<script>fetch('${web}/script'); parent.document.title = 'pwned';</script>`,
    '</head><body>',
    '<p class="tinted">Dear operator, please look at this.</p>',
    `<img id="tracker" alt="tracker" src="${web}/remote.png">`,
    '<img id="logo" alt="logo" src="cid:logo@mailroom.test">',
    `<img alt="broken" src="x" onerror="fetch('${web}/onerror')">`,
    `<div class="bg" style="background: url(${web}/inline-bg.png) no-repeat">styled</div>`,
    `<a id="js-link" href="javascript:fetch('${web}/js-link')">Click me</a>`,
    `<a id="js-link-2" href=" JaVa&#x09;ScRiPt:fetch('${web}/js-link-2')">And me</a>`,
    `<a id="web-link" href="${web}/page">A page</a>`,
    `<form action="${web}/form"><input name="q" value="x"><button id="go">Go</button></form>`,
    `<iframe src="${web}/frame"></iframe>`,
    `<svg><image href="${web}/svg.png"></image><script>fetch('${web}/svg-script')</script></svg>`,
    `<object data="${web}/object"></object>`,
    // Spelled other ways: entities, protocol-relative, srcset, sources, posters, fonts, image inputs.
    `<a id="js-link-3" href="&#106;avascript:fetch('${web}/js-link-3')">Entity</a>`,
    `<a id="data-link" href="data:text/html,<script>fetch('${web}/data-link')</script>">Data</a>`,
    `<img alt="relative" src="${web.replace('http:', '')}/protocol-relative.png">`,
    `<img alt="srcset" srcset="${web}/srcset.png 1x">`,
    `<picture><source srcset="${web}/source.png"><img alt="picture"></picture>`,
    `<video poster="${web}/poster.png"></video><input type="image" src="${web}/input.png">`,
    `<style>@font-face { font-family: x; src: url(${web}/font.woff) } @media screen { @import url(${web}/nested.css); .m { background: url(${web}/media-bg.png) } }</style>`,
    `<p style="font-family: x; background-image: image-set('${web}/image-set.png' 1x)">fonts</p>`,
    '</body></html>',
  ].join('\r\n');
  return [
    'From: Mallory <mallory@example.net>',
    'To: support@example.com',
    'Subject: Hostile HTML',
    `Date: ${new Date().toUTCString()}`,
    'Message-ID: <hostile.1@example.net>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="outer"',
    '',
    '--outer',
    'Content-Type: multipart/related; boundary="related"',
    '',
    '--related',
    'Content-Type: multipart/alternative; boundary="alt"',
    '',
    '--alt',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Dear operator, please look at this (text part).',
    '--alt',
    'Content-Type: text/html; charset=utf-8',
    '',
    html,
    '--alt--',
    '--related',
    'Content-Type: image/png',
    'Content-Transfer-Encoding: base64',
    'Content-ID: <logo@mailroom.test>',
    'Content-Disposition: inline; filename="logo.png"',
    '',
    PIXEL_PNG,
    '--related--',
    '--outer',
    'Content-Type: text/plain; charset=utf-8; name="report.txt"',
    'Content-Disposition: attachment; filename="report.txt"',
    '',
    'The quarterly report.',
    '--outer--',
    '',
  ].join('\r\n');
}

/** The test's stand-in for the web: 127.0.0.1, counting each path asked for. */
async function startWeb(): Promise<{ url: string; hits: string[]; server: Server }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    if ((req.url ?? '').endsWith('.png')) {
      res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.from(PIXEL_PNG, 'base64'));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server };
}

/**
 * The operator's console pages (issue 26) in headless Chromium against the real API (PGlite), the
 * fake IMAP server and the SMTP harness: trace search, a message's page with its HTML shown
 * inertly, held mail and its actions, a destination's mail with live updates, the audit log.
 * The tests run in order on one tenant, as an operator would.
 */
describe('operator console (headless Chromium)', function () {
  this.timeout(60_000);
  let h: ApiHarness | undefined;
  let imap: FakeImapServer | undefined;
  let smtp: SmtpHarness | undefined;
  let web: Awaited<ReturnType<typeof startWeb>> | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let baseUrl: string;
  let tenantId: string;
  let serverId: string;
  let supportId: string;
  let salesId: string;
  let deskToken: string;
  const scriptErrors: string[] = [];
  let probingMailFrame = false;

  before(async function () {
    this.timeout(120_000);
    skipWithout(this, existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install chromium)`);
    imap = await startFakeImap({ users: [{ user: 'support@example.com', password: 'support' }] });
    smtp = await startSmtpHarness({ users: [{ user: 'relay', password: 'relay-pass' }] });
    web = await startWeb();
    h = await openApiHarness('pglite', FAST_INBOUND);
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;

    const tenant = await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Support EMEA' });
    tenantId = tenant.body.id;
    const desk = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/tokens`, { name: 'EMEA desk' });
    deskToken = desk.body.token;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Main mailbox',
      imap: {
        host: '127.0.0.1',
        port: imap.port,
        secure: false,
        user: 'support@example.com',
        auth: { method: 'password', password: 'support' },
      },
      smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'custom', user: 'relay', password: 'relay-pass' } },
    });
    assert.equal(server.status, 201, server.raw);
    serverId = server.body.id;
    const support = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId,
    });
    assert.equal(support.status, 201, support.raw);
    supportId = support.body.id;
    const sales = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Sales',
      address: 'sales@example.com',
      serverId,
    });
    salesId = sales.body.id;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });
    page.on('pageerror', (err) => scriptErrors.push(err.message));
    page.on('console', (message) => {
      // Playwright reading the sandboxed mail frame injects its own script there, which Chromium
      // refuses and reports; such reports count only while the test is not probing that frame.
      if (probingMailFrame && /^Blocked script execution in 'about:srcdoc'/.test(message.text())) return;
      if (/Content.Security.Policy|sandboxed|Blocked/i.test(message.text())) {
        scriptErrors.push(`${message.text()} (${message.location().url})`);
      }
    });
    page.setDefaultTimeout(20_000);
    await mkdir(SCREENSHOTS, { recursive: true });
    await page.goto(`${baseUrl}/`);
    await page.getByLabel('API token').fill(h.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Tenants' }).waitFor();
  });

  after(async () => {
    await browser?.close();
    await h?.close();
    await imap?.close();
    await smtp?.close();
    web?.server.close();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && h) {
      await page?.screenshot({ path: join(SCREENSHOTS, `operator-failed-${Date.now()}.png`), fullPage: true });
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-30).join('\n')}\n`);
    }
  });

  const api = () => h as ApiHarness;
  const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const open = async (hash: string) => page.goto(`${baseUrl}/?load=${Date.now()}#${hash}`);
  const hits = () => web?.hits ?? [];
  /** The sandboxed frame inside the viewer frame. */
  const mailDoc = (): FrameLocator => page.frameLocator('iframe.mail-frame').frameLocator('iframe');

  async function textOf(selector: string): Promise<string> {
    const el = page.locator(selector);
    await el.first().waitFor({ state: 'visible' });
    return ((await el.first().textContent()) ?? '').trim();
  }

  async function hitOf(subject: string): Promise<Obj> {
    return eventually(async () => {
      const res = await api().call<Obj>(
        'GET',
        `/api/v1/tenants/${tenantId}/trace?subject=${encodeURIComponent(subject)}`,
      );
      return res.body.messages?.[0];
    }, 20_000);
  }

  it('serves the mail viewer frame with a policy of its own: no script, framed by the console only', async () => {
    const res = await fetch(`${baseUrl}/console/viewer.html`);
    assert.equal(res.status, 200);
    const policy = res.headers.get('content-security-policy') ?? '';
    assert.match(policy, /default-src 'none'/);
    assert.doesNotMatch(policy, /script-src/, 'scripts fall back to none');
    assert.match(policy, /frame-ancestors 'self'/);
    const consolePage = await fetch(`${baseUrl}/`);
    assert.match(
      consolePage.headers.get('content-security-policy') ?? '',
      /style-src 'self';/,
      'the console stays strict',
    );
  });

  it('ingests the mail the pages show (hostile HTML, unrouted, 55 routed)', async function () {
    this.timeout(60_000);
    await routeMessages(api().store, { tenantId, serverId, destinationId: salesId }, 55);
    imap?.append('support@example.com', 'INBOX', hostileMail(web?.url ?? ''));
    imap?.append('support@example.com', 'INBOX', rawMail({ to: 'nobody@example.com', subject: 'Lost order' }));
    imap?.append('support@example.com', 'INBOX', rawMail({ to: 'nobody@example.com', subject: 'Spam offer' }));
    await api().inbound.start();
    await hitOf('Hostile HTML');
    const lost = await hitOf('Lost order');
    assert.equal(lost.status, 'unrouted');
    await hitOf('Spam offer');
  });

  it('searches the trace with filters and pages with the cursor', async () => {
    await open('/');
    await page.getByRole('link', { name: 'Support EMEA' }).click();
    await page.getByRole('link', { name: 'Message trace' }).click();
    await page.getByRole('heading', { level: 1, name: 'Message trace' }).waitFor();
    const rows = page.getByRole('table', { name: 'Trace results' }).locator('tbody tr');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 50, 'the first page');
    assert.match(await textOf('[role=status].hint'), /50 messages shown, older ones follow/);
    await page.getByRole('button', { name: 'Older messages' }).click();
    await page.getByText('58 messages shown.').waitFor();
    assert.equal(await rows.count(), 58);
    assert.equal(await page.getByRole('button', { name: 'Older messages' }).isVisible(), false);

    await page.getByLabel('Subject contains').fill('message 1');
    await page.getByLabel('Destination').selectOption({ label: 'Sales (sales@example.com)' });
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText('11 messages shown.').waitFor(); // Message 1, 10–19
    assert.match(
      page.url(),
      /#\/tenants\/[^/]+\/trace\?subject=message\+1&destinationId=/,
      'the search is in the address',
    );

    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByLabel('Status').selectOption('unrouted');
    await page.getByLabel('Any address').fill('NOBODY@example.com');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText('2 messages shown.').waitFor();
    // Both arrived in one fetch (the same time): their order is the ids'.
    const found = (await rows.allTextContents()).sort();
    assert.match(found[0] ?? '', /Lost order.*Unrouted/);
    assert.match(found[1] ?? '', /Spam offer.*Unrouted/);

    // The API's refusal shows next to its field.
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByLabel('Any address').fill('x'.repeat(321));
    await page.getByRole('button', { name: 'Search' }).click();
    const error = page.locator('#' + (await page.getByLabel('Any address').getAttribute('id')) + '-error');
    await error.waitFor({ state: 'visible' });
    assert.match((await error.textContent()) ?? '', /address/);
    await shot('20-trace');
  });

  it('opens a message: headers, timeline, text, attachments to download', async () => {
    await open(`/tenants/${tenantId}/trace?subject=Hostile`);
    await page.getByRole('link', { name: 'Hostile HTML' }).click();
    await page.getByRole('heading', { level: 1, name: 'Hostile HTML' }).waitFor();
    const headers = page.locator('dl.headers');
    assert.match((await headers.textContent()) ?? '', /FromMallory <mallory@example\.net>/);
    assert.match((await headers.textContent()) ?? '', /Message-IDhostile\.1@example\.net/);
    const events = await page
      .getByRole('table', { name: 'Timeline' })
      .locator('tbody tr')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-event')));
    assert.deepEqual(events.slice(0, 3), ['fetched', 'classified', 'routed']);
    assert.match(
      (await page.locator('tr[data-event="routed"]').textContent()) ?? '',
      /To Support \(support@example\.com in to\)/i,
      'routed where, because of which address in which header',
    );
    assert.match(
      (await page.locator('tr[data-event="fetched"]').textContent()) ?? '',
      /From Main mailbox, mailbox INBOX, UID \d+/,
    );
    assert.match(await textOf('pre.mail-text'), /please look at this \(text part\)/);
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download report.txt' }).click();
    const file = await download;
    assert.equal(file.suggestedFilename(), 'report.txt');
    const saved = await file.path();
    const { readFile } = await import('node:fs/promises');
    assert.equal((await readFile(saved, 'utf8')).trim(), 'The quarterly report.');
  });

  it('shows the hostile HTML inertly: no script, no remote load until a click, javascript: links dead, cid: image shown', async () => {
    // First, untouched by the test: the document the console wrote into the sandboxed frame.
    const srcdoc = await eventually(async () =>
      page.evaluate(`document.querySelector('iframe.mail-frame')?.contentDocument?.querySelector('iframe')?.srcdoc`),
    );
    assert.equal(typeof srcdoc, 'string');
    const text = String(srcdoc);
    assert.ok(text.includes('Dear operator'), text);
    assert.doesNotMatch(text, /<script|<iframe|<object|<form|<svg|<link|http-equiv="refresh"/i);
    assert.doesNotMatch(text, /\son[a-z]+=/i, 'no event handler attribute');
    assert.doesNotMatch(text, /(src|href|background)="?javascript:/i);
    assert.doesNotMatch(text, /src="http|url\("?http|@import/i, 'no remote image or style sheet before the click');
    assert.equal(
      await page.evaluate(
        `document.querySelector('iframe.mail-frame').contentDocument.querySelector('iframe').getAttribute('sandbox')`,
      ),
      'allow-popups allow-popups-to-escape-sandbox',
      'no allow-scripts, no allow-same-origin',
    );
    await page.waitForTimeout(500); // the frame has rendered; anything it tried was reported by now
    assert.deepEqual(scriptErrors, [], 'the mail frame rendered without a refusal to report');
    probingMailFrame = true;
    const doc = mailDoc();
    await doc.locator('p.tinted').waitFor();
    // The mail's own styles apply (its <style> element survived, cleaned).
    assert.equal(
      await doc.locator('p.tinted').evaluate((p) => p.ownerDocument.defaultView?.getComputedStyle(p).color),
      'rgb(200, 0, 0)',
    );
    // The cid: image is shown from its part, as data.
    const logo = doc.locator('#logo');
    assert.match((await logo.getAttribute('src')) ?? '', /^data:image\/png;base64,/);
    await eventually(async () =>
      (await logo.evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth)) === 1 ? true : undefined,
    );
    // Nothing ran, nothing was fetched.
    assert.equal(
      await doc.locator('script, iframe, object, form, input, svg, link, meta[http-equiv=refresh]').count(),
      0,
    );
    assert.equal(await doc.locator('[onerror]').count(), 0);
    assert.equal(await doc.locator('#tracker').getAttribute('src'), null);
    for (const id of ['#js-link', '#js-link-2', '#js-link-3', '#data-link']) {
      assert.equal(await doc.locator(id).getAttribute('href'), null, `${id} is inert`);
      await doc.locator(id).click();
    }
    assert.equal(await doc.locator('#web-link').getAttribute('target'), '_blank');
    assert.notEqual(await page.title(), 'pwned');
    assert.match(await textOf('.note'), /4 remote images were not loaded/);
    assert.match(await textOf('.note'), /4 links to scripts or other unsafe addresses were disabled/);
    await page.waitForTimeout(500); // a beacon would have arrived by now
    assert.deepEqual(hits(), [], 'the mail reached nothing before the click');
    await shot('21-hostile-mail');

    await page.getByRole('button', { name: 'Show remote images' }).click();
    await eventually(async () => (hits().includes('/remote.png') ? true : undefined));
    await eventually(async () => (hits().includes('/inline-bg.png') ? true : undefined));
    await doc.locator('#tracker[src$="/remote.png"]').waitFor({ state: 'attached' });
    await page.waitForTimeout(300);
    const allowed = new Set(['/remote.png', '/inline-bg.png', '/sheet-bg.png', '/media-bg.png']);
    assert.deepEqual(
      hits().filter((path) => !allowed.has(path)),
      [],
      'after the click: images only (no script, refresh, frame, form, style sheet or plugin)',
    );
    probingMailFrame = false;
  });

  it('acts on unrouted and quarantined mail from the server’s page: route, release, delete', async () => {
    // A message quarantined as ingest stores one whose parser crashed (its source kept, so it can be released).
    const quarantinedId = randomUUID();
    const raw = Buffer.from(rawMail({ to: 'support@example.com', subject: 'Crashed the parser' }));
    await api().store.transaction(async (tx) => {
      await tx.messages.insertBatch([
        {
          row: {
            ...routedMessageRow({ tenantId, serverId, destinationId: supportId }, 1),
            id: quarantinedId,
            status: 'quarantined',
            quarantineReason: 'worker-crashed: the parser worker ended',
            subject: 'Crashed the parser',
            messageIdHeader: null,
          },
          raw,
          trace: { type: 'quarantined', detail: null },
        },
      ]);
    });
    await open(`/tenants/${tenantId}/servers/${serverId}`);
    await page.getByRole('heading', { name: 'Unrouted and quarantined mail (3)' }).waitFor();
    const held = page.getByRole('table', { name: 'Unrouted and quarantined mail' });
    assert.match((await held.textContent()) ?? '', /Crashed the parser.*worker-crashed: the parser worker ended/);
    assert.match((await held.textContent()) ?? '', /Lost order.*No destination has one of its recipient addresses/);
    await shot('22-held-mail');

    // From the message's own page: routed there, its timeline and status follow.
    await held.getByRole('link', { name: 'Lost order' }).click();
    await page.getByRole('heading', { level: 1, name: 'Lost order' }).waitFor();
    assert.match(await textOf('.held-actions'), /This message is held/);
    await page.getByRole('button', { name: 'Route message Lost order' }).click();
    const route = page.getByRole('dialog', { name: 'Route message' });
    await route.getByRole('button', { name: 'Route' }).click();
    await route.getByText('Choose the destination.').waitFor();
    await route.getByLabel('Destination').selectOption({ label: 'Support (support@example.com)' });
    await route.getByRole('button', { name: 'Route' }).click();
    await page.getByText('The message was routed to Support.').waitFor();
    await page.locator('tr[data-event="routed"]').waitFor();
    const routed = (await page.locator('tr[data-event="routed"]').textContent()) ?? '';
    assert.match(routed, new RegExp(`"id":"${supportId}","operator":true`), routed);
    assert.match(routed, /previouslyunrouted/, routed);
    assert.match(routed, /To Support \(chosen by /, routed);
    await page.locator('.page-head [data-status="routed"]').waitFor();
    assert.equal(await page.locator('.held-actions').count(), 0, 'no more actions on a routed message');

    await open(`/tenants/${tenantId}/servers/${serverId}`);
    await page.getByRole('heading', { name: 'Unrouted and quarantined mail (2)' }).waitFor();

    await page.getByRole('button', { name: 'Release message Crashed the parser' }).click();
    await page.getByText('The message was released to Support.').waitFor();
    await page.getByRole('heading', { name: 'Unrouted and quarantined mail (1)' }).waitFor();

    // Releasing mail that would still be held says why, and leaves it held.
    await page.getByRole('button', { name: 'Release message Spam offer' }).click();
    await page
      .locator('#main p.error[role=alert]')
      .filter({ hasText: /still|unrouted|destination/i })
      .first()
      .waitFor();
    await page.getByRole('button', { name: 'Delete message Spam offer' }).click();
    await page.getByRole('dialog', { name: 'Delete message' }).getByRole('button', { name: 'Yes' }).click();
    await page.getByText('The message was deleted.').waitFor();
    await page.getByRole('heading', { name: 'Unrouted and quarantined mail (0)' }).waitFor();

    await page.getByRole('link', { name: 'Trace its mail' }).click();
    await page.getByRole('heading', { level: 1, name: 'Message trace' }).waitFor();
    assert.equal(await page.getByLabel('E-mail server').inputValue(), serverId, 'the trace of this server');
    await page.getByText(/messages shown/).waitFor();

    const timeline = await api().call<Obj>('GET', `/api/v1/tenants/${tenantId}/trace/inbound/${quarantinedId}`);
    assert.deepEqual(timeline.body.events.map((e: Obj) => e.type).slice(-3), ['quarantined', 'released', 'routed']);
    const audit = await api().call<Obj>('GET', `/api/v1/audit?tenantId=${tenantId}`);
    const actions = audit.body.entries.map((e: Obj) => e.action);
    for (const action of ['message.routed', 'message.released', 'message.deleted']) {
      assert.ok(actions.includes(action), `${action} audited: ${actions.join(', ')}`);
    }
  });

  it('shows a destination’s inbound with paging, new mail live, and outbound with its status', async () => {
    await api().outbound.start();
    const sent = await api().call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${supportId}/outbound`, {
      to: ['customer@example.net'],
      subject: 'Your order shipped',
      text: 'It is on its way.',
    });
    assert.equal(sent.status, 202, sent.raw);
    await smtp?.waitFor(1, 15_000);
    await eventually(async () => ((await hitOf('Your order shipped')).status === 'sent' ? true : undefined));

    await open(`/tenants/${tenantId}/destinations/${salesId}`);
    await page.getByRole('heading', { level: 1, name: 'Sales: recent messages' }).waitFor();
    const salesRows = page.getByRole('table', { name: 'Recent messages' }).locator('tbody tr');
    await salesRows.first().waitFor();
    assert.equal(await salesRows.count(), 50);
    await page.getByRole('button', { name: 'Older messages' }).click();
    await eventually(async () => ((await salesRows.count()) === 55 ? true : undefined));
    assert.match((await salesRows.nth(54).textContent()) ?? '', /Message 1$|Message 1\D/);

    await open(`/tenants/${tenantId}/destinations/${supportId}`);
    await page.getByRole('heading', { level: 1, name: 'Support: recent messages' }).waitFor();
    const outgoing = page.getByRole('table', { name: 'Outgoing messages' });
    assert.match((await outgoing.locator('tbody tr').first().textContent()) ?? '', /Your order shipped.*Sent/);
    const rows = page.getByRole('table', { name: 'Recent messages' }).locator('tbody tr');
    const before = await rows.count();
    await page.locator('.live[data-state="open"]').waitFor();
    imap?.append('support@example.com', 'INBOX', rawMail({ subject: 'Arrived while you looked' }));
    await rows.first().filter({ hasText: 'Arrived while you looked' }).waitFor({ timeout: 30_000 });
    assert.equal(await rows.count(), before + 1, 'added without a reload');
    assert.match(await textOf('p.arrived'), /1 new message arrived/);
    // An outgoing message sent while the page is open shows up with its status, without a reload.
    const second = await api().call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${supportId}/outbound`, {
      to: ['customer@example.net'],
      subject: 'Second reply',
      text: 'One more thing.',
    });
    assert.equal(second.status, 202, second.raw);
    await outgoing.locator(`tr[data-hit="${second.body.id}"] [data-status="sent"]`).waitFor({ timeout: 30_000 });
    assert.equal(await rows.count(), before + 1, 'still the same page');
    await shot('23-destination-live');
  });

  it('opens an outgoing message: from, to, subject, status, attempts, last reply, e-mail server, then its timeline', async () => {
    await open(`/tenants/${tenantId}/destinations/${supportId}`);
    await page
      .getByRole('table', { name: 'Outgoing messages' })
      .getByRole('link', { name: 'Your order shipped' })
      .click();
    await page.getByRole('heading', { level: 1, name: 'Your order shipped' }).waitFor();
    const facts = page.locator('dl.headers');
    await facts.waitFor();
    const text = (await facts.textContent()) ?? '';
    assert.match(text, /FromSupport <support@example\.com>/);
    assert.match(text, /Tocustomer@example\.net/);
    assert.match(text, /SubjectYour order shipped/);
    assert.match(text, /StatusSent/);
    assert.match(text, /Attempts1/);
    assert.match(text, /Last SMTP reply250/);
    assert.match(text, /E-mail serverMain mailbox/);
    const events = await page.getByRole('table', { name: 'Timeline' }).locator('tbody tr').allTextContents();
    assert.match(events.join('\n'), /Sent/);
    await shot('25-outgoing-message');
  });

  it('shows the audit log: a tenant token’s server change with before/after and no secret', async () => {
    const changed = await api().call<Obj>(
      'PATCH',
      `/api/v1/tenants/${tenantId}/servers/${serverId}`,
      { name: 'Main mailbox (EMEA)', smtp: { auth: { mode: 'custom', user: 'relay', password: 'new-relay-secret' } } },
      deskToken,
    );
    assert.equal(changed.status, 200, changed.raw);
    await open('/');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    const row = page.locator('tr[data-audit]').filter({ hasText: 'Main mailbox (EMEA)' }).first();
    const text = (await row.textContent()) ?? '';
    assert.match(text, /Support EMEA/, 'the tenant by name');
    assert.match(text, /EMEA desk \(token /, 'who: the token by name and id');
    assert.match(text, /name: Main mailbox → Main mailbox \(EMEA\)/);
    assert.match(text, /smtp\.password: changed/);
    assert.ok(!(await page.content()).includes('new-relay-secret'), 'no secret on the page');
    // Narrowed to another tenant (its only entry: its creation), the server change is not listed.
    const other = await api().call<Obj>('POST', '/api/v1/tenants', { name: 'Quiet tenant' });
    await open('/audit');
    await page.getByLabel('Tenant').selectOption({ label: 'Quiet tenant' });
    await page.waitForURL(new RegExp(`#/audit\\?tenantId=${other.body.id}$`));
    await page.locator('tr[data-audit]').first().waitFor();
    const narrowed = await page.locator('tr[data-audit]').allTextContents();
    assert.ok(
      narrowed.every((t) => t.includes('Quiet tenant')),
      narrowed.join('\n'),
    );
    assert.ok(!narrowed.some((t) => t.includes('Main mailbox (EMEA)')));
    await shot('24-audit');
  });

  it('shows a tenant token its own tenant only: no "Audit log" of all, another tenant not found', async () => {
    const other = await api().call<Obj>('POST', '/api/v1/tenants', { name: 'Other tenant' });
    const tenantPage = await (browser as Browser).newPage();
    tenantPage.on('pageerror', (err) => scriptErrors.push(err.message));
    try {
      await tenantPage.goto(`${baseUrl}/`);
      await tenantPage.getByLabel('API token').fill(deskToken);
      await tenantPage.getByRole('button', { name: 'Sign in' }).click();
      await tenantPage.getByRole('link', { name: 'Support EMEA' }).waitFor();
      assert.equal(await tenantPage.getByRole('link', { name: 'Audit log' }).count(), 0);
      assert.equal(await tenantPage.getByRole('link', { name: 'Other tenant' }).count(), 0);
      await tenantPage.getByRole('link', { name: 'Support EMEA' }).click();
      await tenantPage.getByRole('link', { name: 'Audit log' }).click();
      await tenantPage.getByRole('heading', { level: 1, name: 'Support EMEA: audit log' }).waitFor();
      await tenantPage.locator('tr[data-audit]').first().waitFor();
      await tenantPage.goto(`${baseUrl}/?load=${Date.now()}#/tenants/${other.body.id}/trace`);
      await tenantPage
        .getByRole('alert')
        .filter({ hasText: /does not exist|not found/i })
        .waitFor();
    } finally {
      await tenantPage.close();
    }
  });

  it('ran without script errors or Content-Security-Policy violations', () => {
    assert.deepEqual(scriptErrors, []);
  });
});
