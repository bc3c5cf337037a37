import assert from 'node:assert/strict';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { serverBody } from '../support/fixtures.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * Issue 24 review, finding D: names people read (tenants, servers, destinations, tokens) refuse
 * control characters, bidirectional overrides and isolates, and zero-width characters, naming
 * the field, so that no name reads as another one does.
 */
describe('hidden characters in names [pglite]', function () {
  this.timeout(60_000);
  let h: ApiHarness;
  let tenantId: string;
  let token: string;

  beforeEach(async () => {
    h = await openApiHarness('pglite');
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Acme' })).body.id as string;
    token = (await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/tokens`, { name: 'acme' })).body.token as string;
  });
  afterEach(async () => h.close());

  const hidden = [
    ['a bidi override (U+202E)', 'Acme\u202Egnp.exe'],
    ['a bidi isolate (U+2067)', 'Acme\u2067x'],
    ['a zero-width space (U+200B)', 'Ac\u200Bme'],
    ['a zero-width joiner (U+200D)', 'Acme\u200D'],
    ['a byte-order mark (U+FEFF)', '\uFEFFAcme'],
    ['a line break', 'Acme\nInc'],
    ['a C1 control (U+0085)', 'Acme\u0085'],
  ] as const;

  for (const [what, name] of hidden) {
    it(`refuses ${what} in tenant, server, destination and token names, naming the field`, async () => {
      const answers = [
        await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}`, { name }, token),
        await h.call<Obj>('POST', '/api/v1/tenants', { name }),
        await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, serverBody(1, { name }), token),
        await h.call<Obj>(
          'POST',
          `/api/v1/tenants/${tenantId}/destinations`,
          { name, address: 'support@example.com', serverId: null },
          token,
        ),
        await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/tokens`, { name }),
      ];
      for (const res of answers) {
        assert.equal(res.status, 400, res.raw);
        assert.equal(res.body.error.code, 'VALIDATION_FAILED', res.raw);
        assert.equal(res.body.error.field, 'name', res.raw);
        assert.match(res.body.error.message, /bidirectional overrides/);
      }
    });
  }

  it('takes a name that reads like a taken one as taken (fullwidth, ligatures, doubled blanks)', async () => {
    await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Globex Corp' });
    for (const name of ['ＧＬＯＢＥＸ Corp', 'Globex  Corp', ' globex corp ']) {
      const res = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}`, { name }, token);
      assert.equal(res.status, 409, `${name}: ${res.raw}`);
      assert.equal(res.body.error.code, 'DUPLICATE_NAME');
      assert.equal(res.body.error.message, 'this name cannot be used; choose another', 'no other tenant confirmed');
    }
    const first = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      serverBody(1, { name: 'Oﬃce' }),
      token,
    );
    assert.equal(first.status, 201, first.raw);
    const again = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      serverBody(2, { name: 'OFFICE' }),
      token,
    );
    assert.equal(again.status, 409, again.raw);
    assert.equal(again.body.error.field, 'name');
  });

  it('takes names in any script, with marks and spaces', async () => {
    for (const name of ['Bücher & Co', 'شركة أكمي', 'Ωμέγα', 'مرحبا 123', '日本語の名前']) {
      const res = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}`, { name }, token);
      assert.equal(res.status, 200, `${name}: ${res.raw}`);
    }
  });
});
