import assert from 'node:assert/strict';
import { connect } from 'node:net';
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

  it('answers a body of 9,000 unknown fields at once, naming the first twenty and how many more', async () => {
    const fields = Object.fromEntries(Array.from({ length: 9_000 }, (_, i) => [`k${i}`, i]));
    const res = await send('POST', '/api/v1/tenants', JSON.stringify({ name: 'Many', ...fields }));
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'VALIDATION_FAILED');
    assert.equal(res.body.error.field, 'k0');
    assert.equal(res.body.error.details.errors.length, 20);
    assert.equal(res.body.error.details.more, 8_980);
    assert.match(res.body.error.message, /; and 8980 more fields at fault$/);
    // Every field listed made an answer of ~800 KB (and de-duplicating them took quadratic time).
    assert.ok(res.raw.length < 10_000, `an answer of ${res.raw.length} bytes`);
  });

  it('refuses a body of more than 10,000 members and elements before parsing or checking it', async () => {
    // 300,000 empty objects (900 KB). A send's schema check reports every fault of every element:
    // a million empty attachments took ~11 s of event loop there (its body limit is 25 MiB).
    const body = `{"name":"Many","attachments":[${'{},'.repeat(300_000)}{}]}`;
    const started = process.hrtime.bigint();
    const res = await send('POST', '/api/v1/tenants', body);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(res.status, 400, res.raw);
    assert.equal(res.body.error.field, 'body');
    assert.match(res.body.error.message, /more than 10000 members and elements/);
    assert.ok(ms < 2_000, `answered in ${ms} ms`);
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

  it('names the body as the field of a body that is not JSON', async () => {
    const res = await send('POST', '/api/v1/tenants', '{"name": "Half');
    assert.equal(res.status, 400, res.raw);
    assert.equal(res.body.error.code, 'VALIDATION_FAILED');
    assert.equal(res.body.error.field, 'body');
    assert.match(res.body.error.message, /the request body is not valid JSON/);
  });

  it('lists the allowed values of a choice, in a body and in a query string', async () => {
    const tenant = await send('POST', '/api/v1/tenants', JSON.stringify({ name: 'Choices' }));
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenant.body.id}/servers`, {
      name: 'Box',
      enabled: false,
      imap: {
        host: '127.0.0.1',
        user: 'box@example.com',
        tls: 'sometimes',
        auth: { method: 'password', password: 'x' },
      },
      smtp: { host: '127.0.0.1', port: 1, auth: { mode: 'plain' } },
    });
    assert.equal(server.status, 400, server.raw);
    assert.deepEqual(server.body.error.details.errors, [
      {
        field: 'imap.tls',
        message: "'imap.tls' must be one of: implicit, starttls-required, starttls-when-offered, none",
      },
      { field: 'smtp.auth.mode', message: "'smtp.auth.mode' must be one of: none, imap, custom" },
    ]);
    const trace = await h.call<Obj>('GET', `/api/v1/tenants/${tenant.body.id}/trace?status=bogus`);
    assert.equal(trace.status, 400, trace.raw);
    assert.equal(trace.body.error.field, 'status');
    assert.match(trace.body.error.message, /'status' must be one of: routed, unrouted, .*, sent, deferred, failed$/);
  });

  it("names every field at fault of a new server at once, the schema's and the cross-field rules", async () => {
    const tenant = await send('POST', '/api/v1/tenants', JSON.stringify({ name: 'All at once' }));
    const url = `/api/v1/tenants/${tenant.body.id}/servers`;
    const body = {
      name: 'Box',
      imap: {
        host: '127.0.0.1',
        port: 70000,
        user: 'box@example.com',
        auth: { method: 'password', password: 'one', confirmPassword: 'two' },
      },
      smtp: { host: '127.0.0.1', port: 25, auth: { mode: 'custom', password: 'x' } },
    };
    const res = await h.call<Obj>('POST', url, body);
    assert.equal(res.status, 400, res.raw);
    assert.equal(res.body.error.field, 'imap.port');
    assert.deepEqual(
      res.body.error.details.errors.map((e: Obj) => e.field),
      ['imap.port', 'imap.auth.confirmPassword', 'smtp.auth.user'],
      res.raw,
    );
    // The schema satisfied: the cross-field rules still tell every fault together.
    const rules = await h.call<Obj>('POST', url, { ...body, imap: { ...body.imap, port: 993 } });
    assert.equal(rules.status, 400, rules.raw);
    assert.deepEqual(
      rules.body.error.details.errors.map((e: Obj) => e.field),
      ['imap.auth.confirmPassword', 'smtp.auth.user'],
      rules.raw,
    );
    // A body of the wrong shape still answers the schema's faults alone.
    const shapeless = await h.call<Obj>('POST', url, { name: 'Box', imap: 'x', smtp: 7 });
    assert.equal(shapeless.status, 400, shapeless.raw);
    assert.deepEqual(
      shapeless.body.error.details.errors.map((e: Obj) => e.field),
      ['imap', 'smtp'],
    );
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

  it('answers what fastify and the HTTP parser refuse before any route in the error shape too', async () => {
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = h.app.server.address() as { port: number };
    const raw = (request: string): Promise<{ status: number; body: Obj }> =>
      new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write(request));
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (text += chunk));
        socket.on('error', reject);
        socket.on('close', () => {
          const [head = '', body = ''] = text.split('\r\n\r\n');
          resolve({ status: Number(head.split(' ')[1]), body: JSON.parse(body) as Obj });
        });
      });
    const auth = `authorization: Bearer ${h.adminToken}\r\n`;
    const badUrl = await raw(`GET /api/v1/tenants/%E0%A4%A HTTP/1.1\r\nhost: x\r\n${auth}connection: close\r\n\r\n`);
    assert.equal(badUrl.status, 400);
    assert.deepEqual(badUrl.body.error, {
      code: 'MALFORMED_REQUEST',
      message: 'the URL cannot be decoded (malformed percent-encoding)',
      field: 'url',
    });
    const longId = await raw(
      `GET /api/v1/tenants/${'a'.repeat(200)} HTTP/1.1\r\nhost: x\r\n${auth}connection: close\r\n\r\n`,
    );
    assert.equal(longId.status, 400);
    assert.equal(longId.body.error.code, 'VALIDATION_FAILED');
    assert.equal(longId.body.error.field, 'url');
    const bigHeader = await raw(`GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.equal(bigHeader.status, 431);
    assert.equal(bigHeader.body.error.code, 'HEADERS_TOO_LARGE');
    const garbage = await raw('NOT HTTP AT ALL\r\n\r\n');
    assert.equal(garbage.status, 400);
    assert.equal(garbage.body.error.code, 'MALFORMED_REQUEST');
  });
});
