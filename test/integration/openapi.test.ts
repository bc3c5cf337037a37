import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { ERROR_CODES } from '../../src/shared/errors.js';
import { ROUTES } from '../../src/api/routes/index.js';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';

interface Operation {
  parameters?: Array<{ in: string; name: string }>;
  responses: Record<
    string,
    {
      description: string;
      content?: Record<
        string,
        { schema: { properties?: { error?: { properties?: { code?: { enum?: string[] } } } } } }
      >;
      headers?: Record<string, unknown>;
    }
  >;
}
type Document = { paths: Record<string, Record<string, Operation>> };

/** The error codes an operation's document lists under `status`. */
function codesOf(op: Operation, status: number): string[] {
  return (
    op.responses[String(status)]?.content?.['application/json']?.schema.properties?.error?.properties?.code?.enum ?? []
  );
}

describe('OpenAPI document (GET /api/v1/openapi.json)', function () {
  this.timeout(120_000);
  let h: ApiHarness;
  let doc: Document;

  before(async function () {
    skipWithout(this, await postgresMissing());
    h = await openApiHarness('postgres');
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    assert.equal(res.statusCode, 200);
    doc = res.json<Document>();
  });
  after(async () => {
    await h?.close();
  });

  it('validates against the OpenAPI 3.0 schema (an independent validator)', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as Parameters<Validator['validate']>[0]);
    assert.deepEqual(result.errors ?? [], [], JSON.stringify(result.errors, null, 2));
    assert.equal(result.valid, true);
  });

  it('lists every operation, each with its error statuses, the error schema and their codes', () => {
    let operations = 0;
    for (const route of ROUTES.filter((r) => !r.hidden)) {
      const path = route.url.replace(/:(\w+)/g, '{$1}');
      const op = doc.paths[path]?.[route.method.toLowerCase()];
      assert.ok(op, `${route.method} ${path} is documented`);
      operations += 1;
      const key = `${route.method} ${route.url}`;
      for (const [status, response] of Object.entries(op.responses)) {
        // Statuses a route declares itself (the readiness check's 503) carry its own body.
        if (Number(status) < 400 || route.schema.response[Number(status)] !== undefined) continue;
        const codes = codesOf(op, Number(status));
        assert.ok(codes.length > 0, `${key} ${status} names its codes`);
        for (const code of codes) {
          assert.equal(ERROR_CODES[code as keyof typeof ERROR_CODES]?.status, Number(status), `${key}: ${code}`);
          assert.ok(response.description.includes(code), `${key} ${status} describes ${code}`);
        }
      }
      if (route.access !== 'public') {
        assert.deepEqual(codesOf(op, 401), ['UNAUTHORIZED'], `${key} answers 401 without a valid token`);
      }
      if (route.access === 'admin') assert.deepEqual(codesOf(op, 403), ['FORBIDDEN'], key);
      if (route.url.includes(':tenantId')) assert.ok(codesOf(op, 404).includes('TENANT_NOT_FOUND'), key);
      if (route.schema.body || route.schema.params || route.schema.querystring) {
        assert.ok(codesOf(op, 400).includes('VALIDATION_FAILED'), `${key} answers 400 for invalid input`);
      }
      if (route.schema.body) {
        assert.ok(codesOf(op, 413).includes('PAYLOAD_TOO_LARGE'), key);
        assert.ok(codesOf(op, 415).includes('UNSUPPORTED_MEDIA_TYPE'), key);
      }
      assert.ok(codesOf(op, 500).includes('INTERNAL'), key);
      if (!['/healthz', '/readyz', '/api/v1/openapi.json'].includes(route.url)) {
        assert.ok(codesOf(op, 503).includes('DATABASE_UNAVAILABLE'), `${key}: a database away answers 503`);
      }
    }
    assert.ok(operations >= 57, `${operations} operations`);
  });

  it('describes what each route answers beyond the common errors (a sample)', () => {
    const op = (method: string, path: string): Operation => doc.paths[path]?.[method] as Operation;
    const servers = op('post', '/api/v1/tenants/{tenantId}/servers');
    for (const code of ['SERVER_LIMIT_REACHED', 'ACCOUNT_IN_USE', 'DUPLICATE_NAME']) {
      assert.ok(codesOf(servers, 409).includes(code), code);
    }
    const deleteServer = op('delete', '/api/v1/tenants/{tenantId}/servers/{serverId}');
    assert.ok(codesOf(deleteServer, 409).includes('SERVER_IN_USE'));
    assert.ok(codesOf(deleteServer, 409).includes('SERVER_HAS_QUEUED_MAIL'));
    assert.ok(codesOf(deleteServer, 404).includes('SERVER_NOT_FOUND'));
    const claim = op('post', '/api/v1/tenants/{tenantId}/destinations/{destinationId}/messages/{messageId}/claim');
    assert.ok(codesOf(claim, 409).includes('ALREADY_CLAIMED'));
    const messages = op('get', '/api/v1/tenants/{tenantId}/destinations/{destinationId}/messages');
    assert.ok(codesOf(messages, 429).includes('TOO_MANY_WAITS'));
    assert.ok(messages.responses['429']?.headers?.['retry-after'], 'a 429 says when to retry');
  });

  it('describes the event stream: text/event-stream, the Last-Event-ID header and its errors', () => {
    const events = doc.paths['/api/v1/tenants/{tenantId}/destinations/{destinationId}/events']?.get as Operation;
    assert.ok(events.responses['200']?.content?.['text/event-stream'], 'the stream is text/event-stream');
    assert.equal(events.responses['200']?.content?.['application/json'], undefined);
    assert.ok(
      events.parameters?.some((p) => p.in === 'header' && p.name.toLowerCase() === 'last-event-id'),
      'Last-Event-ID is a documented header',
    );
    assert.ok(codesOf(events, 400).includes('VALIDATION_FAILED'));
    assert.ok(codesOf(events, 404).includes('DESTINATION_NOT_FOUND'));
    assert.ok(codesOf(events, 429).includes('TOO_MANY_WAITS'));
  });
});
