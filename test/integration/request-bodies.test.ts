import assert from 'node:assert/strict';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

forEachBackend('request bodies', (kind) => {
  let h: ApiHarness;
  beforeEach(async () => {
    h = await openApiHarness(kind);
  });
  afterEach(() => h.close());

  const send = async (method: 'POST' | 'PATCH' | 'DELETE', url: string, payload: string | undefined): Promise<Obj> => {
    const res = await h.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' },
      ...(payload !== undefined && { payload }),
    });
    return { status: res.statusCode, body: res.body === '' ? {} : (res.json() as Obj), raw: res.body };
  };

  it('refuses a deeply nested body before parsing it, with 400 VALIDATION_FAILED', async () => {
    const deep = `{"name":"Deep","x":${'['.repeat(400_000)}${']'.repeat(400_000)}}`;
    const started = process.hrtime.bigint();
    const res = await send('POST', '/api/v1/tenants', deep);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(res.status, 400, res.raw);
    assert.equal(res.body.error.code, 'VALIDATION_FAILED');
    assert.match(res.body.error.message, /nests objects and arrays deeper than 32 levels/);
    assert.ok(ms < 2_000, `answered in ${ms} ms`);
    // Brackets inside strings are text, not nesting; prototype keys are still refused.
    const bracketed = await send('POST', '/api/v1/tenants', JSON.stringify({ name: `Deep ${'['.repeat(40)}` }));
    assert.equal(bracketed.status, 201, bracketed.raw);
    const poisoned = await send('POST', '/api/v1/tenants', '{"name":"P","__proto__":{"x":1}}');
    assert.equal(poisoned.status, 400, poisoned.raw);
  });

  it('takes an empty body with a JSON content type as no body (curl -X DELETE -H content-type…)', async () => {
    const tenant = await send('POST', '/api/v1/tenants', JSON.stringify({ name: 'Gone soon' }));
    assert.equal(tenant.status, 201, tenant.raw);
    const token = await send('POST', `/api/v1/tenants/${tenant.body.id}/tokens`, JSON.stringify({ name: 'desk' }));
    assert.equal(token.status, 201, token.raw);
    const revoked = await send('DELETE', `/api/v1/tenants/${tenant.body.id}/tokens/${token.body.id}`, '');
    assert.equal(revoked.status, 204, revoked.raw);
    const deleted = await send('DELETE', `/api/v1/tenants/${tenant.body.id}`, '\n');
    assert.equal(deleted.status, 204, deleted.raw);
    const noPayload = await send('DELETE', `/api/v1/tenants/${tenant.body.id}`, undefined);
    assert.equal(noPayload.body.error.code, 'TENANT_NOT_FOUND', noPayload.raw);
    // A route that needs a body says so, as it does without a content type.
    const empty = await send('POST', '/api/v1/tenants', '');
    assert.equal(empty.status, 400, empty.raw);
    assert.equal(empty.body.error.code, 'VALIDATION_FAILED');
    assert.doesNotMatch(empty.body.error.message, /Body cannot be empty/);
  });

  it('names the body as the field when a body is missing or not an object, never an empty field', async () => {
    const tenant = await send('POST', '/api/v1/tenants', JSON.stringify({ name: 'Bodies' }));
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenant.body.id}/servers`, {
      name: 'Box',
      enabled: false,
      imap: { host: '127.0.0.1', port: 1, user: 'box@example.com', auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port: 1, auth: { mode: 'none' } },
    });
    assert.equal(server.status, 201, server.raw);
    const test = `/api/v1/tenants/${tenant.body.id}/servers/${server.body.id}/test`;
    for (const [url, payload] of [
      ['/api/v1/tenants', ''],
      ['/api/v1/tenants', undefined],
      ['/api/v1/tenants', '[]'],
      [test, '[]'],
      [test, '"x"'],
      [test, 'null'],
    ] as const) {
      const res = await send('POST', url, payload);
      assert.equal(res.status, 400, `${url} ${String(payload)}: ${res.raw}`);
      assert.equal(res.body.error.field, 'body', res.raw);
      assert.match(res.body.error.message, /the request body must be a JSON object/, res.raw);
    }
  });
});
