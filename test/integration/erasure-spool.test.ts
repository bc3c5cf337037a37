import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * Issue 24 review, finding C: a tenant's erasure deleted the spool's recycled files, which any
 * tenant's delivered mail leaves, and counted them in its receipt (other tenants' traffic, read
 * through `counts.spoolFiles`). They are still wiped (they may hold the address's bytes), uncounted.
 */
describe('erasure and the spool’s recycled files [pglite]', function () {
  this.timeout(60_000);
  let h: ApiHarness;

  beforeEach(async () => {
    h = await openApiHarness('pglite');
  });
  afterEach(async () => h.close());

  it("wipes them without counting other tenants' files into the receipt", async () => {
    // A delivered message of another tenant, its file kept in free/ for reuse (read at start).
    await mkdir(join(h.spoolDir, 'free'), { recursive: true });
    await writeFile(join(h.spoolDir, 'free', 'left-1'), 'To: someone@tenant-a.example\r\n\r\nTenant A business');
    await writeFile(join(h.spoolDir, 'free', 'left-2'), 'To: customer@example.net\r\n\r\nolder bytes');
    await h.outbound.start();
    const tenantB = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'B' })).body.id as string;
    const token = (await h.call<Obj>('POST', `/api/v1/tenants/${tenantB}/tokens`, { name: 'b' })).body.token as string;
    const res = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantB}/erasures`,
      { address: 'customer@example.net' },
      token,
    );
    assert.equal(res.status, 200, res.raw);
    assert.ok(res.body.finishedAt, res.raw);
    assert.equal(res.body.counts.spoolFiles ?? 0, 0, `no other tenant's files in the receipt: ${res.raw}`);
    assert.deepEqual(await readdir(join(h.spoolDir, 'free')), [], 'no bytes of delivered mail are left to reuse');
  });
});
