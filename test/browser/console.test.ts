import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { queuedRow } from '../../src/store/rows.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { eventually, rawMail } from '../support/mail.js';
import { skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** Debian's chromium (never a downloaded browser); another path for a local run in MAILROOM_TEST_CHROMIUM. */
const CHROMIUM = process.env.MAILROOM_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = join(process.cwd(), 'test-output', 'screenshots');
const OAUTH_USER = 'support@contoso.test';

/**
 * The web console in headless Chromium against the real API (PGlite), the SMTP harness and the
 * fake identity provider. One browser and one page for the file; the tests run in order, each
 * building on the tenant the previous ones configured, as an administrator would.
 */
describe('web console (headless Chromium)', function () {
  this.timeout(60_000); // each browser action waits up to 20 s; starting the engine and Chromium can take longer
  let h: ApiHarness | undefined;
  let idp: FakeIdp | undefined;
  let smtp: SmtpHarness | undefined;
  let imap: FakeImapServer | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let baseUrl: string;
  let tenantId: string;
  const scriptErrors: string[] = [];

  before(async function () {
    this.timeout(120_000);
    skipWithout(this, existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install chromium)`);
    idp = await startFakeIdp({ pollIntervalSeconds: 1 });
    smtp = await startSmtpHarness({ users: [{ user: 'relay', password: 'relay-pass' }] });
    imap = await startFakeImap({ users: [{ user: 'support@example.com', password: 'support' }] });
    // A named proxy the server form offers (nothing listens there: no server is left choosing it).
    const proxies = { named: new Map([['lab', new URL('http://127.0.0.1:9')]]) };
    h = await openApiHarness('pglite', FAST_INBOUND, { proxies }, {}, { identityProviderCa: idp.ca });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
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
    page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    page.on('pageerror', (err) => scriptErrors.push(err.message));
    page.on('console', (message) => {
      if (/Content.Security.Policy/i.test(message.text())) scriptErrors.push(message.text());
    });
    page.setDefaultTimeout(20_000);
    await mkdir(SCREENSHOTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await h?.close();
    await smtp?.close();
    await imap?.close();
    await idp?.close();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && h) {
      await page?.screenshot({ path: join(SCREENSHOTS, `failed-${Date.now()}.png`), fullPage: true }).catch(() => {});
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-30).join('\n')}\n`);
    }
  });

  const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const api = () => h as ApiHarness;
  const mailbox = () => imap as FakeImapServer;
  const dialog = (title: string) => page.getByRole('dialog', { name: title });
  const section = (scope: Locator, legend: string) => scope.getByRole('group', { name: legend });
  /** The error shown under a labelled control. */
  const errorOf = (control: Locator) =>
    control.locator('xpath=ancestor::div[contains(@class,"field")][1]/p[contains(@class,"field-error")]');
  const serverRow = (name: string) => page.locator(`tr[data-server="${name}"]`);

  async function textOf(locator: Locator): Promise<string> {
    await locator.waitFor({ state: 'visible' });
    return ((await locator.textContent()) ?? '').trim();
  }

  async function openTenant(): Promise<void> {
    await page.goto(`${baseUrl}/?load=${Date.now()}#/tenants/${tenantId}`); // a full load, not only a new hash
    await page.getByRole('heading', { level: 1, name: 'Support EMEA' }).waitFor();
  }

  it('serves the console with a strict Content-Security-Policy and refuses paths outside it', async () => {
    const res = await fetch(`${baseUrl}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const script = await fetch(`${baseUrl}/console/app.js`);
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
    for (const bad of [
      '/console/..%2fpackage.json',
      '/console/%2e%2e/package.json',
      '/console/lib/',
      '/console/x.ts',
    ]) {
      assert.equal((await fetch(`${baseUrl}${bad}`)).status, 404, bad);
    }
  });

  it('signs in with the API token, refusing a wrong one next to the field', async () => {
    await page.goto(`${baseUrl}/`);
    const tokenInput = page.getByLabel('API token');
    await tokenInput.fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    assert.match(await textOf(errorOf(tokenInput)), /not valid/);
    await shot('01-sign-in');
    await tokenInput.fill(api().adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Tenants' }).waitFor();
    assert.ok(!page.url().includes(api().adminToken), 'the token never goes into the URL');
    // The function runs in the page (its sessionStorage); the test's TypeScript has no DOM types.
    const stored = await page.evaluate('sessionStorage.getItem("mailroom.apiToken")');
    assert.equal(stored, api().adminToken);
  });

  it('creates a tenant with the keyboard alone (focus into the dialog, Escape, focus back)', async () => {
    const focused = () =>
      page.evaluate(
        '[document.activeElement.tagName, document.activeElement.name || document.activeElement.textContent]',
      );
    await page.getByRole('button', { name: 'Add tenant' }).focus();
    await page.keyboard.press('Enter');
    const add = dialog('Add tenant');
    await add.waitFor();
    assert.deepEqual(await focused(), ['INPUT', 'name']);
    await page.keyboard.press('Escape');
    await add.waitFor({ state: 'detached' });
    assert.deepEqual(await focused(), ['BUTTON', 'Add tenant']);
    await page.keyboard.press('Enter');
    await add.waitFor();
    await page.keyboard.type('Support EMEA');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Support EMEA' }).waitFor();
    tenantId = decodeURIComponent(/#\/tenants\/([^/]+)$/.exec(page.url())?.[1] ?? '');
    const stored = await api().call<Obj>('GET', `/api/v1/tenants/${tenantId}`);
    assert.equal(stored.body.name, 'Support EMEA');
    await page.getByRole('link', { name: 'Tenants' }).click();
    await page.getByRole('link', { name: 'Support EMEA' }).waitFor();
    await shot('02-tenants');
  });

  it('adds an e-mail server with a password, checking the confirmation first', async () => {
    await openTenant();
    await page.getByRole('button', { name: 'Add e-mail server' }).click();
    const add = dialog('Add e-mail server');
    await add.getByLabel('E-mail server name').fill('Main mailbox');
    const imap = section(add, 'IMAP settings');
    await imap.getByLabel('Host name').fill('127.0.0.1');
    await imap.getByLabel('Port number').fill(String(mailbox().port));
    await imap.getByLabel('Encryption').selectOption('starttls-when-offered');
    await imap.getByLabel('User name').fill('support@example.com');
    await imap.getByLabel('Password', { exact: true }).fill('support');
    await imap.getByLabel('Confirm password').fill('supprot');
    const smtpSide = section(add, 'SMTP settings');
    await smtpSide.getByLabel('Host name').fill('127.0.0.1');
    await smtpSide.getByLabel('Port number').fill(String(smtp?.port));
    await smtpSide.getByLabel('Authentication').selectOption({ label: 'Use settings below' });
    await smtpSide.getByLabel('User name').fill('relay');
    await smtpSide.getByLabel('Password', { exact: true }).fill('relay-pass');
    await smtpSide.getByLabel('Confirm password').fill('relay-pass');
    await smtpSide.getByLabel('Heartbeat e-mail address').fill('support@example.com');
    await smtpSide.getByLabel('Message rate limit').fill('600');
    await add.getByRole('button', { name: 'Add' }).click();
    assert.equal(await textOf(errorOf(imap.getByLabel('Confirm password'))), 'The passwords do not match.');
    await shot('03-add-server-dialog');
    await imap.getByLabel('Confirm password').fill('support');
    await add.getByRole('button', { name: 'Add' }).click();
    await add.waitFor({ state: 'detached' });
    await serverRow('Main mailbox').waitFor();
    // Added enabled: its watcher starts with the next reconcile, meanwhile it is connecting (not "Disabled").
    assert.equal(await textOf(serverRow('Main mailbox').locator('[data-connection]')), 'Connecting');
    const { body } = await api().call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers`);
    assert.equal(body.servers.length, 1);
    const server = body.servers[0];
    assert.equal(server.imap.auth.hasPassword, true);
    assert.equal(server.imap.tls, 'starttls-when-offered');
    assert.equal(server.imap.secure, false);
    assert.deepEqual(
      [server.smtp.auth.mode, server.smtp.auth.user, server.smtp.heartbeatAddress, server.smtp.rateLimitPerHour],
      ['custom', 'relay', 'support@example.com', 600],
    );
  });

  it('adds a destination that uses the server', async () => {
    await page.getByRole('button', { name: 'Add destination' }).click();
    const add = dialog('Add destination');
    assert.equal(await add.getByLabel('E-mail server').inputValue(), '', 'no server is chosen for the administrator');
    await add.getByLabel('Destination name').fill('Support');
    await add.getByLabel('E-mail address').fill('support-at-example.com');
    await add.getByRole('button', { name: 'Add' }).click();
    assert.equal(
      await textOf(errorOf(add.getByLabel('E-mail address'))),
      'Enter a valid e-mail address, such as support@example.com.',
    );
    await add.getByLabel('E-mail address').fill('support@example.com');
    await add.getByLabel('From text').fill('ACME Support');
    await add.getByLabel('E-mail server').selectOption({ label: 'Main mailbox' });
    await add.getByRole('button', { name: 'Add' }).click();
    await add.waitFor({ state: 'detached' });
    await page.locator('tr[data-destination="Support"]').getByText('Main mailbox').waitFor();
  });

  it('copies a destination under a new name and address', async () => {
    await page.getByRole('button', { name: 'Copy destination Support' }).click();
    const copy = dialog('Copy destination');
    await copy.getByLabel('Destination name').fill('Sales');
    await copy.getByRole('button', { name: 'Add' }).click();
    assert.equal(await textOf(errorOf(copy.getByLabel('E-mail address'))), 'Enter the e-mail address.');
    await copy.getByLabel('E-mail address').fill('sales@example.com');
    await copy.getByRole('button', { name: 'Add' }).click();
    await copy.waitFor({ state: 'detached' });
    const sales = page.locator('tr[data-destination="Sales"]');
    assert.match(await textOf(sales), /sales@example\.com.*ACME Support.*Main mailbox/);
  });

  it('refuses to delete the server a destination uses, and says why', async () => {
    await page.getByRole('button', { name: 'Delete e-mail server Main mailbox' }).click();
    const confirm = dialog('Delete e-mail server');
    await confirm.getByRole('button', { name: 'Yes' }).click();
    const why = await textOf(confirm.getByRole('alert'));
    assert.match(why, /is used by destinations 'Support', 'Sales'|is used by destinations 'Sales', 'Support'/);
    await page.keyboard.press('Escape');
    await confirm.waitFor({ state: 'detached' });
    await serverRow('Main mailbox').waitFor();
  });

  it('copies a server, showing the API’s refusal of the same account next to the user name', async () => {
    await page.getByRole('button', { name: 'Copy e-mail server Main mailbox' }).click();
    const copy = dialog('Copy e-mail server');
    await copy.getByLabel('E-mail server name').fill('Second mailbox');
    const imap = section(copy, 'IMAP settings');
    await imap.getByLabel('Password', { exact: true }).fill('second');
    await imap.getByLabel('Confirm password').fill('second');
    await copy.getByRole('button', { name: 'Add' }).click();
    assert.match(await textOf(errorOf(imap.getByLabel('User name'))), /already configured in this tenant/);
    await imap.getByLabel('User name').fill('second@example.com');
    await copy.getByRole('button', { name: 'Add' }).click();
    await copy.waitFor({ state: 'detached' });
    await serverRow('Second mailbox').waitFor();
    const { body } = await api().call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers`);
    const second = body.servers.find((s: Obj) => s.name === 'Second mailbox');
    assert.equal(second.imap.user, 'second@example.com');
    assert.equal(second.smtp.rateLimitPerHour, 600, 'the rest is copied');
  });

  it('edits a server, keeping the stored passwords while its endpoints stay, asking for them when the proxy changes', async () => {
    await page.getByRole('button', { name: 'Edit e-mail server Main mailbox' }).click();
    const edit = dialog('Edit e-mail server');
    const smtpSide = section(edit, 'SMTP settings');
    assert.equal(await smtpSide.getByLabel('Password', { exact: true }).getAttribute('placeholder'), 'unchanged');
    await smtpSide.getByLabel('Message rate limit').fill('70000000');
    await edit.getByRole('button', { name: 'Save' }).click();
    assert.match(await textOf(errorOf(smtpSide.getByLabel('Message rate limit'))), /from 0 to 1000000/);
    await smtpSide.getByLabel('Message rate limit').fill('300');
    const proxy = section(edit, 'Proxy').getByLabel('IMAP and SMTP connections go');
    assert.deepEqual(await proxy.locator('option').allTextContents(), [
      "The engine's default (no proxy: directly)",
      'No proxy (directly)',
      'lab (http://127.0.0.1:9)',
    ]);
    await proxy.selectOption({ label: 'No proxy (directly)' });
    await edit.getByRole('button', { name: 'Save' }).click();
    // Another proxy is another path for the passwords: they are asked for again (issue #24).
    const imapSide = section(edit, 'IMAP settings');
    assert.match(await textOf(errorOf(imapSide.getByLabel('Password', { exact: true }))), /Enter the password/);
    for (const [side, password] of [
      [imapSide, 'support'],
      [smtpSide, 'relay-pass'],
    ] as const) {
      if (!(await side.getByLabel('Password', { exact: true }).isVisible())) continue;
      await side.getByLabel('Password', { exact: true }).fill(password);
      await side.getByLabel('Confirm password').fill(password);
    }
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.waitFor({ state: 'detached' });
    const { body } = await api().call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers`);
    const main = body.servers.find((s: Obj) => s.name === 'Main mailbox');
    assert.equal(main.smtp.rateLimitPerHour, 300);
    assert.equal(main.proxy, 'none');
    assert.equal(main.imap.auth.hasPassword, true);
    assert.equal(main.smtp.auth.hasPassword, true);
  });

  it('signs in with OAuth 2.0: Get Code, the code and a countdown, then the status turns COMPLETE', async () => {
    await page.getByRole('button', { name: 'Add e-mail server' }).click();
    await dialog('Add e-mail server').waitFor();
    const add = page.locator('dialog[open]'); // its title changes once Get Code has saved the server
    await add.getByLabel('E-mail server name').fill('Office 365');
    const imap = section(add, 'IMAP settings');
    await imap.getByLabel('Host name').fill('127.0.0.1');
    await imap.getByLabel('Port number').fill('1993');
    await imap.getByLabel('User name').fill(OAUTH_USER);
    await imap.getByLabel('Authentication').selectOption({ label: 'OAuth 2.0' });
    await imap.getByLabel('OAuth client ID').fill('public-client');
    await imap.getByLabel('OAuth tenant ID').fill('contoso-directory');
    await imap.getByLabel('Authority host').fill(idp?.url ?? '');
    const smtpSide = section(add, 'SMTP settings');
    await smtpSide.getByLabel('Host name').fill('127.0.0.1');
    await smtpSide.getByLabel('Port number').fill('2525');
    await smtpSide.getByLabel('Authentication').selectOption({ label: 'Use IMAP settings' });
    await imap.getByRole('button', { name: 'Get Code' }).click();
    const userCode = await textOf(imap.locator('.user-code'));
    await dialog('Edit e-mail server').waitFor(); // saved: the dialog now edits the new server
    assert.match(await textOf(imap.locator('.oauth-status')), /PENDING/);
    const countdown = Number(await textOf(imap.locator('.countdown')));
    assert.ok(countdown > 880 && countdown <= 900, `countdown ${countdown}`);
    assert.equal(
      await imap.getByRole('link', { name: 'Authenticate' }).getAttribute('href'),
      `${idp?.url}/devicelogin`,
    );
    await shot('04-device-code');
    assert.ok(idp?.approve(userCode, OAUTH_USER), 'the fake identity provider knows the code');
    await imap.locator('.oauth-status[data-status="COMPLETE"]').waitFor();
    assert.match(await textOf(imap.getByRole('status')), /signed in as support@contoso\.test/);
    await shot('05-device-code-complete');
    await page.keyboard.press('Escape');
    assert.match(await textOf(serverRow('Office 365')), /IMAP sign-in: COMPLETE/);
    const { body } = await api().call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers`);
    const office = body.servers.find((s: Obj) => s.name === 'Office 365');
    const oauth = await api().call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${office.id}/oauth`);
    assert.equal(oauth.body.imap.status, 'COMPLETE');
  });

  it('signs the SMTP side in with its own device code ("Use settings below", OAuth 2.0), given only its user name', async () => {
    await page.getByRole('button', { name: 'Edit e-mail server Office 365' }).click();
    const edit = dialog('Edit e-mail server');
    const smtpSide = section(edit, 'SMTP settings');
    await smtpSide.getByLabel('Authentication').selectOption({ label: 'Use settings below' });
    await smtpSide.getByLabel('Method').selectOption({ label: 'OAuth 2.0' });
    await smtpSide.getByLabel('User name').fill(OAUTH_USER);
    // As the reference's SMTP form: no client or tenant ID; the IMAP side's app registration is used.
    await smtpSide.getByRole('button', { name: 'Get Code' }).click();
    const userCode = await textOf(smtpSide.locator('.user-code'));
    assert.ok(idp?.approve(userCode, OAUTH_USER));
    await smtpSide.locator('.oauth-status[data-status="COMPLETE"]').waitFor();
    await page.keyboard.press('Escape');
    assert.match(await textOf(serverRow('Office 365')), /IMAP sign-in: COMPLETE.*SMTP sign-in: COMPLETE/);
  });

  it('refuses a sixth server and shows the API’s message', async () => {
    for (const n of [4, 5]) {
      const res = await api().call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
        name: `Mailbox ${n}`,
        imap: { host: '127.0.0.1', port: 1, user: `box${n}@example.com`, auth: { method: 'password', password: 'x' } },
        smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
        enabled: false,
      });
      assert.equal(res.status, 201, res.raw);
    }
    await openTenant();
    await page.getByRole('heading', { name: 'E-mail servers (5 of 5)' }).waitFor();
    await shot('06-tenant');
    await page.getByRole('button', { name: 'Add e-mail server' }).click();
    const add = dialog('Add e-mail server');
    await add.getByLabel('E-mail server name').fill('Sixth');
    const imap = section(add, 'IMAP settings');
    await imap.getByLabel('Host name').fill('127.0.0.1');
    await imap.getByLabel('User name').fill('six@example.com');
    await imap.getByLabel('Password', { exact: true }).fill('six');
    await imap.getByLabel('Confirm password').fill('six');
    const smtpSide = section(add, 'SMTP settings');
    await smtpSide.getByLabel('Host name').fill('127.0.0.1');
    await smtpSide.getByLabel('Port number').fill('2525');
    await add.getByRole('button', { name: 'Add' }).click();
    const message = await textOf(add.getByRole('alert').filter({ hasText: 'e-mail servers' }));
    assert.match(message, /already has 5 e-mail servers, the most a tenant may have/);
    await page.keyboard.press('Escape');
    await add.waitFor({ state: 'detached' });
  });

  it('deletes a destination and an unused server after Yes', async () => {
    await page.getByRole('button', { name: 'Delete destination Sales' }).click();
    await dialog('Delete destination').getByRole('button', { name: 'Yes' }).click();
    await page.locator('tr[data-destination="Sales"]').waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Delete e-mail server Mailbox 5' }).click();
    const confirm = dialog('Delete e-mail server');
    await confirm.getByRole('button', { name: 'No' }).click();
    await confirm.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Delete e-mail server Mailbox 5' }).click();
    await dialog('Delete e-mail server').getByRole('button', { name: 'Yes' }).click();
    await page.getByRole('heading', { name: 'E-mail servers (4 of 5)' }).waitFor();
    assert.equal(await serverRow('Mailbox 5').count(), 0);
  });

  it('shows a dead letter on the server’s status page and re-queues it', async () => {
    const { body } = await api().call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations`);
    const destination = body.destinations.find((d: Obj) => d.name === 'Support');
    smtp?.faults.rejectRecipient('*', 550, '5.1.1 no such user');
    await api().outbound.start();
    const sent = await api().call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${destination.id}/outbound`, {
      to: ['customer@example.net'],
      subject: 'Your order',
      text: 'It is on its way.',
    });
    assert.equal(sent.status, 202, sent.raw);
    await eventually(async () =>
      (await api().outbound.deadLetters(tenantId, destination.serverId)).length === 1 ? true : undefined,
    );

    await page.getByRole('link', { name: 'Main mailbox' }).click();
    await page.getByRole('heading', { level: 1, name: 'Main mailbox: status' }).waitFor();
    const row = page.locator(`tr[data-dead-letter="${sent.body.id}"]`);
    assert.match(await textOf(row), /550/);
    assert.match(await textOf(row), /Your order/, 'the subject is shown');
    await page.getByRole('heading', { name: 'Dead letters (1)' }).waitFor();
    await shot('07-server-status');

    smtp?.faults.clear();
    await row.getByRole('button', { name: /Re-queue/ }).click();
    await page.getByRole('heading', { name: 'Dead letters (0)' }).waitFor();
    const [delivered] = (await smtp?.waitFor(1, 15_000)) ?? [];
    assert.deepEqual(delivered?.envelope.to, ['customer@example.net']);

    // "Test connection": both sides log in with the stored settings, and the page says so.
    await page.getByRole('button', { name: 'Test connection' }).click();
    const tested = page.getByRole('region', { name: 'Connection test' });
    await tested.getByText(/SMTP: OK/).waitFor();
    assert.match(await textOf(tested), /IMAP: OK connected and logged in as support@example\.com/);
    assert.match(await textOf(tested), /SMTP: OK connected and logged in as relay/);
  });

  it('lists a request waiting for an instance that is not running, and withdraws it after Yes', async () => {
    const { body } = await api().call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations`);
    const destination = body.destinations.find((d: Obj) => d.name === 'Support');
    // A message waiting in the spool of an instance that has gone away.
    const waiting = queuedRow({
      id: randomUUID(),
      tenantId,
      destinationId: destination.id,
      serverId: destination.serverId,
      messageIdHeader: 'gone@mailroom.invalid',
      conversationId: null,
      subject: 'Left behind',
      recipients: ['customer@example.net'],
      instanceId: 'engine-gone',
    });
    await api().store.outbound.insert(waiting);
    const cancel = await api().call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/destinations/${destination.id}/outbound/${waiting.id}/cancel`,
      {},
    );
    assert.equal(cancel.status, 202, cancel.raw);

    await page.goto(`${baseUrl}/?load=${Date.now()}#/tenants/${tenantId}/servers/${destination.serverId}`);
    await page.getByRole('heading', { name: 'Waiting for other instances (1)' }).waitFor();
    const row = page.locator(`tr[data-request="${cancel.body.requestId}"]`);
    assert.match(await textOf(row), /Cancel/);
    assert.match(await textOf(row), /Left behind/, 'the subject is shown');
    assert.match(await textOf(row), /engine-gone \(not running\)/);
    await shot('08-waiting-requests');
    await row.getByRole('button', { name: /Withdraw/ }).click();
    await dialog('Withdraw request').getByRole('button', { name: 'Yes' }).click();
    await page.getByRole('heading', { name: /Waiting for other instances/ }).waitFor({ state: 'hidden' });
    const settled = await api().call<Obj>(
      'GET',
      `/api/v1/tenants/${tenantId}/outbound-requests/${cancel.body.requestId}`,
    );
    assert.equal(settled.body.state, 'withdrawn', settled.raw);
    await api().store.outbound.delete(waiting.id);
  });

  it('offers to give up waiting mail when a server to delete still has some', async () => {
    // A server whose relay refuses connections, with one accepted message waiting, and no destination any more.
    const server = await api().call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Old relay',
      enabled: false,
      imap: { host: '127.0.0.1', port: 1, user: 'old@example.com', auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port: 1, auth: { mode: 'none' } },
    });
    assert.equal(server.status, 201, server.raw);
    const destination = await api().call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Old',
      address: 'old@example.com',
      serverId: server.body.id,
    });
    const base = `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}`;
    const sent = await api().call<Obj>('POST', `${base}/outbound`, {
      to: ['c@example.net'],
      subject: 'Stuck',
      text: 'x',
    });
    assert.equal(sent.status, 202, sent.raw);
    assert.equal((await api().call<Obj>('DELETE', base)).status, 204);

    await openTenant();
    await page.getByRole('button', { name: 'Delete e-mail server Old relay' }).click();
    await dialog('Delete e-mail server').getByRole('button', { name: 'Yes' }).click();
    const giveUp = dialog('Give up waiting mail');
    assert.match(
      await textOf(giveUp.locator('p').first()),
      /1 outgoing message still waits to be sent through 'Old relay'/,
    );
    await giveUp.getByRole('button', { name: 'Give up mail and delete' }).click();
    await giveUp.waitFor({ state: 'detached' });
    await serverRow('Old relay').waitFor({ state: 'detached' });
    const row = await api().store.outbound.byId(sent.body.id);
    assert.equal(row?.status, 'failed');
    assert.match(row?.lastReply ?? '', /e-mail server was deleted/);
  });

  it('lists a destination’s recent inbound messages', async () => {
    mailbox().append('support@example.com', 'INBOX', rawMail({ subject: 'Where is my order?' }));
    mailbox().append('support@example.com', 'INBOX', rawMail({ subject: 'And my invoice?' }));
    await openTenant();
    const connection = serverRow('Main mailbox').locator('[data-connection]');
    assert.equal(await textOf(connection), 'Connecting');
    await api().inbound.start();
    // The tenant page reads the states again by itself: the watcher's connection shows without a reload.
    await connection.filter({ hasText: /^Connected \((IDLE|polling)\)$/ }).waitFor();
    const { body } = await api().call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations`);
    const support = body.destinations.find((d: Obj) => d.name === 'Support');
    const feed = `/api/v1/tenants/${tenantId}/destinations/${support.id}/messages`;
    await eventually(
      async () => ((await api().call<Obj>('GET', feed)).body.messages.length > 1 ? true : undefined),
      20_000,
    );
    await openTenant();
    await page.getByRole('link', { name: 'Support', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Support: recent messages' }).waitFor();
    const rows = page.getByRole('table', { name: 'Recent messages' }).locator('tbody tr');
    // Newest first.
    assert.match(await textOf(rows.nth(0)), /Customer <customer@example\.net>.*And my invoice\?/);
    assert.match(await textOf(rows.nth(1)), /Customer <customer@example\.net>.*Where is my order\?/);
    await shot('08-destination-messages');
    await page.getByRole('link', { name: 'Support EMEA' }).click();
    await page.getByRole('link', { name: 'Main mailbox' }).click();
    await page.getByText(/^Connected \((IDLE|polling)\)$/).waitFor();
    await shot('09-server-connected');
  });

  it('does not offer a tenant token "Add tenant"', async () => {
    const created = await api().call<Obj>('POST', `/api/v1/tenants/${tenantId}/tokens`, { name: 'EMEA desk' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const tenantPage = await (browser as Browser).newPage();
    try {
      await tenantPage.goto(`${baseUrl}/`);
      await tenantPage.getByLabel('API token').fill(created.body.token);
      await tenantPage.getByRole('button', { name: 'Sign in' }).click();
      await tenantPage.getByRole('link', { name: 'Support EMEA' }).waitFor();
      assert.equal(await tenantPage.getByRole('button', { name: 'Add tenant' }).count(), 0);
    } finally {
      await tenantPage.close();
    }
    await page.goto(`${baseUrl}/?load=${Date.now()}#/`);
    await page.getByRole('button', { name: 'Add tenant' }).waitFor(); // the administrator still has it
  });

  it('ran without script errors or Content-Security-Policy violations', () => {
    assert.deepEqual(scriptErrors, []);
  });
});
