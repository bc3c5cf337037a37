import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SEND_BODY_LIMIT } from '../../src/api/routes/outbound.js';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * Issue 24 review, finding F: the OpenAPI document allowed a send's `text` of 5,000,000
 * characters, `html` of 10,000,000 and 50 attachments while every body over 1 MiB was refused
 * (413). The send route takes 25 MiB; the document says what each route takes.
 */
describe('the body limit of a send agrees with its schema [pglite]', function () {
  this.timeout(60_000);
  let h: ApiHarness;
  let tenantId: string;

  beforeEach(async () => {
    h = await openApiHarness('pglite');
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'T' })).body.id as string;
  });
  afterEach(async () => h.close());

  const post = async (url: string, payload: string): Promise<Obj> => {
    const res = await h.app.inject({
      method: 'POST',
      url,
      headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' },
      payload,
    });
    return { status: res.statusCode, body: res.json() as Obj, raw: res.body.slice(0, 500) };
  };

  it('takes a text of the largest length the schema allows; a larger body than the route takes answers 413', async () => {
    const url = `/api/v1/tenants/${tenantId}/destinations/${randomUUID()}/outbound`;
    const largest = await post(url, JSON.stringify({ to: ['a@example.com'], text: 'x'.repeat(5_000_000) }));
    // Past the body limit and the schema: only the destination is missing.
    assert.equal(largest.status, 404, largest.raw);
    assert.equal(largest.body.error.code, 'DESTINATION_NOT_FOUND');
    const attachments = await post(
      url,
      JSON.stringify({
        to: ['a@example.com'],
        text: 'see attached',
        attachments: [
          { filename: 'a.bin', contentType: 'application/octet-stream', contentBase64: 'QUFB'.repeat(2_500_000) },
        ],
      }),
    );
    assert.equal(attachments.status, 404, attachments.raw);
    const tooLarge = await post(url, JSON.stringify({ text: 'x'.repeat(SEND_BODY_LIMIT) }));
    assert.equal(tooLarge.status, 413, tooLarge.raw);
    assert.equal(tooLarge.body.error.code, 'PAYLOAD_TOO_LARGE');
    // Other routes keep the API's 1 MiB.
    const tenant = await post('/api/v1/tenants', JSON.stringify({ name: 'x'.repeat(2_000_000) }));
    assert.equal(tenant.status, 413, tenant.raw);
  });

  it('the OpenAPI document says how large a body each route takes, and the send’s fits its schema', async () => {
    const doc = (await h.call<Obj>('GET', '/api/v1/openapi.json')).body;
    const send = doc.paths['/api/v1/tenants/{tenantId}/destinations/{destinationId}/outbound'].post;
    assert.match(send.responses['413'].description, new RegExp(`up to ${SEND_BODY_LIMIT} bytes`));
    const schema = send.requestBody.content['application/json'].schema;
    assert.ok(schema.properties.text.maxLength < SEND_BODY_LIMIT);
    assert.ok(schema.properties.html.maxLength < SEND_BODY_LIMIT);
    const tenants = doc.paths['/api/v1/tenants'].post;
    assert.match(tenants.responses['413'].description, /up to 1048576 bytes/);
  });
});
