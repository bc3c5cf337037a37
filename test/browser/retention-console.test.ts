import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { addRouteTarget, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { signInAsAdministrator } from '../support/console-sign-in.js';
import { skipWithout } from '../support/requirements.js';
import { routeMessages, type RouteTarget } from '../support/routed-messages.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** Debian's chromium (never a downloaded browser); another path for a local run in MAILROOM_TEST_CHROMIUM. */
const CHROMIUM = process.env.MAILROOM_TEST_CHROMIUM ?? '/usr/bin/chromium';
/** The sender of every message routeMessages stores. */
const SENDER = 'jane@example.net';

/**
 * The console's retention page (issue 25) in headless Chromium against the real API (PGlite):
 * a tenant's retention changed through its form (a refused value shown at its field), the
 * retention job's last runs with what they deleted, and an erasure requested (confirmed in a
 * second step) whose receipt joins the list. In order, on one tenant.
 */
describe('console: retention and erasure page (headless Chromium)', function () {
  this.timeout(60_000);
  let h: ApiHarness | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let baseUrl: string;
  let target: RouteTarget;
  const scriptErrors: string[] = [];

  before(async function () {
    this.timeout(120_000);
    skipWithout(this, existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install chromium)`);
    h = await openApiHarness('pglite');
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    target = await addRouteTarget(h, 'Support APAC');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.on('pageerror', (err) => scriptErrors.push(err.message));
    page.on('console', (message) => {
      if (/Content.Security.Policy|Blocked/i.test(message.text())) scriptErrors.push(message.text());
    });
    page.setDefaultTimeout(20_000);
    await signInAsAdministrator(page, baseUrl, h.adminToken);
  });

  after(async () => {
    await browser?.close();
    await h?.close();
  });

  const api = () => h as ApiHarness;
  const open = async (hash: string) => page.goto(`${baseUrl}/?load=${Date.now()}#${hash}`);
  const retentionPage = async () => {
    await open(`/tenants/${target.tenantId}/retention`);
    await page.getByRole('heading', { level: 1, name: 'Support APAC: retention and erasure' }).waitFor();
  };
  const count = async (): Promise<number> =>
    Number(
      (
        await api().store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_messages WHERE tenant_id = $1', [
          target.tenantId,
        ])
      )[0]?.n,
    );

  it('is reached from the tenant page and changes retention through its form, a refused value at its field', async () => {
    await open(`/tenants/${target.tenantId}`);
    await page.getByRole('link', { name: 'Retention and erasure' }).click();
    await page.getByRole('heading', { level: 1, name: 'Support APAC: retention and erasure' }).waitFor();
    assert.equal(await page.getByLabel('Whole messages').inputValue(), '', 'kept forever by default');
    await page.getByText('The retention job has not run for this tenant yet.').waitFor();

    await page.getByLabel('Whole messages').fill('0');
    await page.getByRole('button', { name: 'Save retention' }).click();
    const error = page.locator('#retention-form .field-error:not([hidden])');
    await error.waitFor();
    assert.match((await error.textContent()) ?? '', /messageDays/);
    assert.equal(await page.getByLabel('Whole messages').getAttribute('aria-invalid'), 'true');

    await page.getByLabel('Whole messages').fill('365');
    await page.getByLabel('Raw sources (.eml)').fill('30');
    await page.getByRole('button', { name: 'Save retention' }).click();
    await page.getByText('Saved.').waitFor();
    const policy = await api().call<Obj>('GET', `/api/v1/tenants/${target.tenantId}/retention`);
    assert.equal(policy.body.messageDays, 365);
    assert.equal(policy.body.rawSourceDays, 30);
    assert.equal(policy.body.logDays, null);
  });

  it('shows the last retention runs with what each deleted', async () => {
    await routeMessages(api().store, target, 5);
    // Three of them 400 days old and acknowledged: due under 365 days.
    await api().store.query(
      `UPDATE inbound_messages SET ingested_at = now() - interval '400 days'
        WHERE id IN (SELECT id FROM inbound_messages WHERE tenant_id = $1 ORDER BY uid LIMIT 3)`,
      [target.tenantId],
    );
    await api().store.query(
      `UPDATE inbound_deliveries SET claimed_by = 'agent', acked_at = now() WHERE tenant_id = $1`,
      [target.tenantId],
    );
    const report = await api().lifecycle.job.runOnce();
    assert.equal(report?.messages, 3);
    await api().lifecycle.job.runOnce(); // nothing more is due
    await retentionPage();
    const rows = page.getByRole('table', { name: 'Retention runs' }).locator('tbody tr');
    assert.equal(await rows.count(), 2);
    assert.match((await rows.nth(0).textContent()) ?? '', /nothing was due/);
    assert.match((await rows.nth(1).textContent()) ?? '', /messages: 3/);
    assert.match((await page.locator('#storage').textContent()) ?? '', /Messages2 /);
  });

  it('erases an address after a second confirmation and lists the receipt, without the address', async () => {
    assert.equal(await count(), 2);
    await retentionPage();
    await page.getByText('No erasure was requested yet.').waitFor();
    await page.getByLabel('Address *').fill(SENDER);
    await page.getByRole('button', { name: 'Erase…' }).click();
    await page.getByText(/deleted for good/).waitFor();
    assert.equal(await count(), 2, 'nothing erased before the confirmation');
    await page.getByRole('button', { name: 'Erase for good' }).click();
    const row = page.getByRole('table', { name: 'Erasure receipts' }).locator('tr[data-erasure]');
    await row.first().waitFor();
    assert.equal(await row.count(), 1);
    const text = (await row.first().textContent()) ?? '';
    assert.match(text, /messages: 2/);
    assert.match(text, /administrator/);
    assert.ok(!text.includes(SENDER), 'the receipt keeps no address');
    assert.equal(await count(), 0);
    // Listed again after a reload, from the API.
    await retentionPage();
    assert.equal(await page.locator('tr[data-erasure]').count(), 1);
    assert.equal(await page.getByLabel('Address *').inputValue(), '');
  });

  it('ran without script errors or Content-Security-Policy violations', () => {
    assert.deepEqual(scriptErrors, []);
  });
});
