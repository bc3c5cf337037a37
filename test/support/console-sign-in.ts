import type { Page } from 'playwright-core';

/** Signs the console at `baseUrl` in with `token` (an administrator's: it waits for the Tenants page). */
export async function signInAsAdministrator(page: Page, baseUrl: string, token: string): Promise<void> {
  await page.goto(`${baseUrl}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Tenants' }).waitFor();
}
