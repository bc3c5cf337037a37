import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { makeServiceAccountKeyFile, startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { eventually } from '../support/mail.js';
import { skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const CHROMIUM = process.env.MAILROOM_TEST_CHROMIUM ?? '/usr/bin/chromium';
const MAILBOX = 'support@workspace.test';
const SERVICE_ACCOUNT = 'mailroom@project.iam.gserviceaccount.com';

/**
 * The server form for the kinds of server the console had no form for (issue 27): a Google
 * Workspace service account (key file chosen or pasted, the mailbox as IMAP user) with the Gmail
 * folders watched; errors next to the field they name; the key never shown again.
 */
describe('console: a Google service account server (headless Chromium)', function () {
  this.timeout(60_000);
  let h: ApiHarness | undefined;
  let idp: FakeIdp | undefined;
  let imap: FakeImapServer | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let tenantId: string;
  const scriptErrors: string[] = [];

  before(async function () {
    this.timeout(120_000);
    skipWithout(this, existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install chromium)`);
    const started = await startFakeIdp({});
    idp = started;
    imap = await startFakeImap({
      gmail: true,
      users: [{ user: MAILBOX, mailboxes: ['Support'] }],
      verifyAccessToken: (user, token) => started.verifyAccessToken(user, token),
    });
    h = await openApiHarness('pglite', FAST_INBOUND, {}, {}, { identityProviderCa: started.ca });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Workspace' })).body.id as string;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.on('pageerror', (err) => scriptErrors.push(err.message));
    page.setDefaultTimeout(20_000);
    const baseUrl = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    await page.goto(`${baseUrl}/`);
    await page.getByLabel('API token').fill(h.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Tenants' }).waitFor();
    await page.goto(`${baseUrl}/?load=${Date.now()}#/tenants/${tenantId}`);
    await page.getByRole('heading', { level: 1, name: 'Workspace' }).waitFor();
  });

  after(async () => {
    await browser?.close();
    await h?.close();
    await imap?.close();
    await idp?.close();
  });

  const dialog = (title: string) => page.getByRole('dialog', { name: title });
  const section = (scope: Locator, legend: string) => scope.getByRole('group', { name: legend });
  const errorOf = (control: Locator) =>
    control.locator('xpath=ancestor::div[contains(@class,"field")][1]/p[contains(@class,"field-error")]');
  async function textOf(locator: Locator): Promise<string> {
    await locator.waitFor({ state: 'visible' });
    return ((await locator.textContent()) ?? '').trim();
  }

  it('adds a Gmail mailbox with a service account key file, naming the field of each error', async () => {
    const { keyFile, publicKey } = makeServiceAccountKeyFile(SERVICE_ACCOUNT);
    idp?.addServiceAccount({
      clientEmail: SERVICE_ACCOUNT,
      publicKey,
      delegatedScopes: ['https://mail.google.com/'],
      users: [MAILBOX],
    });
    await page.getByRole('button', { name: 'Add e-mail server' }).click();
    const add = dialog('Add e-mail server');
    await add.getByLabel('E-mail server name').fill('Gmail');
    const imapSide = section(add, 'IMAP settings');
    await imapSide.getByLabel('Host name').fill('127.0.0.1');
    await imapSide.getByLabel('Port number').fill(String(imap?.port));
    await imapSide.getByLabel('Encryption').selectOption('none');
    await imapSide.getByLabel('User name').fill(MAILBOX);
    await imapSide.getByLabel('Authentication').selectOption({ label: 'OAuth 2.0' });
    await imapSide.getByLabel('Flow').selectOption({ label: 'Google service account (key file)' });
    // Microsoft's fields are not asked for.
    assert.equal(await imapSide.getByLabel('OAuth tenant ID').isVisible(), false);
    assert.equal(await imapSide.getByLabel('Office 365 server URL').isVisible(), false);
    await imapSide.getByLabel('Authority host').fill(idp?.url ?? '');
    // The mailbox's All Mail under its French name: found by its special use, not read.
    imap?.createMailbox(MAILBOX, 'Tous les messages', { specialUse: '\\All' });
    await imapSide.getByLabel('Folders watched').fill('INBOX\nSupport\nTous les messages');
    const smtpSide = section(add, 'SMTP settings');
    await smtpSide.getByLabel('Host name').fill('127.0.0.1');
    await smtpSide.getByLabel('Port number').fill('2525');
    const key = imapSide.getByLabel('Service account key (JSON key file)');

    // No key: said next to the key, before anything is sent.
    await add.getByRole('button', { name: 'Add' }).click();
    assert.equal(await textOf(errorOf(key)), 'Paste the JSON key file or choose it.');
    // A key that is no key: the engine's refusal of `imap.auth.clientSecret` shows next to it too.
    await imapSide.getByLabel('OAuth client ID').fill(SERVICE_ACCOUNT);
    await key.fill('{"type": "service_account"}');
    await add.getByRole('button', { name: 'Add' }).click();
    assert.match(await textOf(errorOf(key)), /imap\.auth\.clientSecret/);

    // The key file chosen; the client ID left empty is the key's client_email.
    await imapSide.getByLabel('OAuth client ID').fill('');
    await imapSide
      .getByLabel('Service account key file')
      .setInputFiles({ name: 'key.json', mimeType: 'application/json', buffer: Buffer.from(keyFile) });
    // Read by the page asynchronously (File.text()).
    await eventually(async () => (/"client_email"/.test(await key.inputValue()) ? true : undefined));
    await add.getByRole('button', { name: 'Add' }).click();
    await add.waitFor({ state: 'detached' });

    const { body, raw } = await (h as ApiHarness).call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers`);
    assert.ok(!raw.includes('PRIVATE KEY'), 'the key is never shown');
    const server = body.servers.find((s: Obj) => s.name === 'Gmail');
    assert.deepEqual(server.imap.auth.oauth2, {
      clientId: SERVICE_ACCOUNT,
      directoryId: '',
      flow: 'service-account',
      authorityHost: idp?.url,
      serverUrl: null,
      hasClientSecret: true,
    });
    assert.deepEqual(server.imap.folders, ['INBOX', 'Support', 'Tous les messages']);
    // Signed in with the key: the mailbox is watched.
    await (h as ApiHarness).inbound.start();
    await eventually(async () => ((h as ApiHarness).inbound.status(server.id).state === 'idle' ? true : undefined));
    await page.getByRole('link', { name: 'Gmail' }).click();
    assert.match(
      await textOf(page.locator('[data-not-watched="Tous les messages"]')),
      /^not read: the mailbox's All Mail/,
    );
    await page.goBack();

    // Edited: the stored key stays stored and is not shown.
    await page.getByRole('button', { name: 'Edit e-mail server Gmail' }).click();
    const edit = dialog('Edit e-mail server');
    const editKey = section(edit, 'IMAP settings').getByLabel('Service account key (JSON key file)');
    assert.equal(await editKey.inputValue(), '');
    assert.equal(await editKey.getAttribute('placeholder'), 'unchanged (a key is stored)');
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.waitFor({ state: 'detached' });
    const again = await (h as ApiHarness).call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${server.id}`);
    assert.equal(again.body.imap.auth.oauth2.hasClientSecret, true);
  });

  it('ran without script errors', () => {
    assert.deepEqual(scriptErrors, []);
  });
});
