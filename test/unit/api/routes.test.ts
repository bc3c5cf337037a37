import assert from 'node:assert/strict';
import { ROUTES } from '../../../src/api/routes/index.js';

describe('API route table', () => {
  it('declares every route once, with a summary, an access rule and response schemas', () => {
    const seen = new Set<string>();
    for (const route of ROUTES) {
      const key = `${route.method} ${route.url}`;
      assert.ok(!seen.has(key), `${key} declared twice`);
      seen.add(key);
      assert.ok(route.summary.length > 0, key);
      assert.ok(['public', 'admin', 'tenant'].includes(route.access), key);
      if (route.url !== '/api/v1/openapi.json') assert.ok(Object.keys(route.schema.response).length > 0, key);
      // Actions without input (a test send) are the only bodyless writes.
      const bodyless = ['/webhook/test', '/release'].some((suffix) => route.url.endsWith(suffix));
      if (['POST', 'PATCH', 'PUT'].includes(route.method) && !bodyless) {
        assert.ok(route.schema.body, `${key} validates its body`);
      }
      if (route.url.includes(':tenantId')) assert.ok(route.schema.params, `${key} validates its path`);
    }
  });

  it('keeps only health, readiness, the OpenAPI document and the web console files public', () => {
    const open = ROUTES.filter((r) => r.access === 'public').map((r) => r.url);
    assert.deepEqual(open.sort(), ['/', '/api/v1/openapi.json', '/console/*', '/healthz', '/readyz']);
  });

  it('has the paths the issue asks for', () => {
    const keys = new Set(ROUTES.map((r) => `${r.method} ${r.url}`));
    for (const expected of [
      'POST /api/v1/tenants',
      'GET /api/v1/tenants',
      'GET /api/v1/tenants/:tenantId',
      'PATCH /api/v1/tenants/:tenantId',
      'DELETE /api/v1/tenants/:tenantId',
      'POST /api/v1/tenants/:tenantId/servers',
      'GET /api/v1/tenants/:tenantId/servers',
      'GET /api/v1/tenants/:tenantId/servers/:serverId',
      'PATCH /api/v1/tenants/:tenantId/servers/:serverId',
      'DELETE /api/v1/tenants/:tenantId/servers/:serverId',
      'POST /api/v1/tenants/:tenantId/servers/:serverId/copy',
      'POST /api/v1/tenants/:tenantId/destinations',
      'GET /api/v1/tenants/:tenantId/destinations',
      'GET /api/v1/tenants/:tenantId/destinations/:destinationId',
      'PATCH /api/v1/tenants/:tenantId/destinations/:destinationId',
      'DELETE /api/v1/tenants/:tenantId/destinations/:destinationId',
      'POST /api/v1/tenants/:tenantId/destinations/:destinationId/copy',
      // Issue 26: the console opens a trace hit (held mail has no destination) and its parts.
      'GET /api/v1/tenants/:tenantId/trace',
      'GET /api/v1/tenants/:tenantId/trace/:kind/:id',
      'GET /api/v1/tenants/:tenantId/messages/:messageId',
      'GET /api/v1/tenants/:tenantId/messages/:messageId/attachments/:index',
    ]) {
      assert.ok(keys.has(expected), expected);
    }
  });
});
