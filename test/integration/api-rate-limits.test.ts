import assert from 'node:assert/strict';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

describe('API request rate limits (per token, per address without a valid token)', function () {
  this.timeout(60_000);
  let h: ApiHarness;
  let tenantId: string;

  beforeEach(async () => {
    h = await openApiHarness('pglite', FAST_INBOUND, {}, {}, undefined, { rateLimits: { perToken: 5, perAddress: 3 } });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Busy' })).body.id as string;
  });
  afterEach(async () => {
    await h.close();
  });

  const token = async (name: string): Promise<string> => {
    const issued = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/tokens`, { name });
    assert.equal(issued.status, 201, issued.raw);
    return issued.body.token as string;
  };

  function assertLimited(res: { status: number; body: Obj; headers: Record<string, string>; raw: string }): void {
    assert.equal(res.status, 429, res.raw);
    assert.equal(res.body.error.code, 'RATE_LIMITED');
    assert.match(res.body.error.message, /retry in \d+ s/);
    const retryAfter = Number(res.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  }

  it('answers a token beyond its requests per window 429 with Retry-After; other tokens go on', async () => {
    const busy = await token('busy');
    const calm = await token('calm');
    const url = `/api/v1/tenants/${tenantId}/servers`;
    for (let i = 0; i < 5; i += 1) assert.equal((await h.call<Obj>('GET', url, undefined, busy)).status, 200);
    assertLimited(await h.call<Obj>('GET', url, undefined, busy));
    assert.equal((await h.call<Obj>('GET', url, undefined, calm)).status, 200, 'another token has its own count');
    for (let i = 0; i < 10; i += 1) {
      assert.equal((await h.call<Obj>('GET', url)).status, 200, "the configuration's administrator token");
    }
  });

  it('answers wrong tokens from one address 429 beyond the limit; valid tokens from it go on', async () => {
    const valid = await token('valid');
    const url = `/api/v1/tenants/${tenantId}/servers`;
    for (let i = 0; i < 3; i += 1) {
      assert.equal((await h.call<Obj>('GET', url, undefined, `wrong-${i}`)).status, 401);
    }
    assertLimited(await h.call<Obj>('GET', url, undefined, 'wrong-again'));
    const none = await h.app.inject({ method: 'GET', url });
    assert.equal(none.statusCode, 429, 'no token at all: the same count');
    // Many clients share an address behind a NAT or a reverse proxy: a valid token, a tenant's or
    // the administrator's, is never locked out by the failures of others (outside review).
    assert.equal((await h.call<Obj>('GET', url, undefined, valid)).status, 200);
    assert.equal((await h.call<Obj>('GET', url)).status, 200);
    assertLimited(await h.call<Obj>('GET', url, undefined, 'wrong-once-more'));
    const other = await h.app.inject({
      method: 'GET',
      url,
      remoteAddress: '192.0.2.7',
      headers: { authorization: 'Bearer wrong' },
    });
    assert.equal(other.statusCode, 401, 'another address has its own count');
  });

  it('counts requests to public routes per address, but never the health probes', async () => {
    for (let i = 0; i < 3; i += 1) {
      assert.equal((await h.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).statusCode, 200);
    }
    const limited = await h.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    assert.equal(limited.statusCode, 429);
    assert.equal((limited.json() as Obj).error.code, 'RATE_LIMITED');
    assert.ok(limited.headers['retry-after']);
    // A load balancer's probes get through whatever the address did.
    for (let i = 0; i < 10; i += 1) {
      assert.equal((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
      assert.notEqual((await h.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 429);
    }
  });
});
