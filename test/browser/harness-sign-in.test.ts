import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { skipWithout } from '../support/requirements.js';

/** Debian's chromium (never a downloaded browser); another path for a local run in MAILROOM_TEST_CHROMIUM. */
const CHROMIUM = process.env.MAILROOM_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = join(process.cwd(), 'test-output', 'screenshots');
const ACCOUNTS = ['office@example.com', 'alice@example.com'];

/**
 * The harness identity provider's sign-in page in headless Chromium, as a person uses it: its
 * strict policy refuses nothing the page needs (the inline style applies, the form posts), the
 * code typed and the account picked sign in, and the buttons revoke.
 */
describe("harness identity provider's sign-in page (headless Chromium)", function () {
  this.timeout(60_000);
  let idp: FakeIdp | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const refusals: string[] = [];

  before(async function () {
    this.timeout(120_000);
    skipWithout(this, existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install chromium)`);
    idp = await startFakeIdp({ accounts: ACCOUNTS });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    // The person accepted the certificate warning for this page (the README's other way: import the CA).
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    page = await context.newPage();
    page.on('pageerror', (err) => refusals.push(err.message));
    page.on('console', (message) => {
      if (/Content.Security.Policy|Refused/i.test(message.text())) refusals.push(message.text());
    });
    page.setDefaultTimeout(20_000);
    await mkdir(SCREENSHOTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await idp?.close();
  });

  it('signs a person in with the code and the account picked, then revokes the grant', async () => {
    assert.ok(idp);
    const reply = await fetchDeviceCode(idp);
    await page.goto(idp.verificationUri);
    assert.equal(await page.title(), 'Sign in: Mailroom harness identity provider');
    // The inline style is allowed by its hash: the page is laid out, not bare.
    assert.equal(await page.evaluate('getComputedStyle(document.body).maxWidth'), '640px');
    await page.getByLabel('Code').first().fill(reply.userCode.toLowerCase());
    await page.getByLabel('alice@example.com').check();
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('You have signed in to app browser-app as alice@example.com').waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'harness-sign-in.png'), fullPage: true });
    const pending = idp.pendingCodes().find((c) => c.userCode === reply.userCode);
    assert.deepEqual([pending?.state, pending?.user], ['approved', 'alice@example.com']);

    // The tokens are issued at the app's next poll; then the page lists the grant with its button.
    const tokens = await poll(idp, reply.deviceCode);
    assert.equal(idp.verifyAccessToken('alice@example.com', tokens.access_token as string), true);
    await page.goto(idp.verificationUri);
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.getByText("Revoked alice@example.com's sign-in").waitFor();
    assert.equal(idp.verifyAccessToken('alice@example.com', tokens.access_token as string), false);
    await page.getByText('Nobody is signed in.').waitFor();
    assert.deepEqual(refusals, [], 'nothing the page does is refused by its policy');
  });
});

interface DeviceCodeReply {
  userCode: string;
  deviceCode: string;
}

/** Asks for a device code as msal-node does (a form POST to the directory's devicecode endpoint). */
async function fetchDeviceCode(idp: FakeIdp): Promise<DeviceCodeReply> {
  const body = await postForm(idp, '/contoso/oauth2/v2.0/devicecode', { client_id: 'browser-app', scope: 'openid' });
  return { userCode: body.user_code as string, deviceCode: body.device_code as string };
}

function poll(idp: FakeIdp, deviceCode: string): Promise<Record<string, unknown>> {
  return postForm(idp, '/contoso/oauth2/v2.0/token', {
    grant_type: 'device_code',
    client_id: 'browser-app',
    device_code: deviceCode,
  });
}

/** A form POST to the provider from Node, trusting its CA only. */
async function postForm(idp: FakeIdp, path: string, form: Record<string, string>): Promise<Record<string, unknown>> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(
      `${idp.url}${path}`,
      { method: 'POST', ca: idp.ca, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>));
      },
    );
    req.on('error', reject);
    req.end(new URLSearchParams(form).toString());
  });
}
