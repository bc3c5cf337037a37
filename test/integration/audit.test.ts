import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { runAs } from '../../src/shared/actor.js';
import { cliActor } from '../../src/cli/services.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { CANARY_PASSWORD, destinationBody, serverBody } from '../support/fixtures.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

forEachBackend('audit log', (kind) => {
  let h: ApiHarness;

  beforeEach(async function () {
    this.timeout(120_000); // the first opens the embedded database
    h = await openApiHarness(kind);
  });
  afterEach(async () => {
    await h.close();
  });

  async function tenantWithToken(name: string): Promise<{ tenantId: string; token: string; tokenId: string }> {
    const tenant = await h.call<Obj>('POST', '/api/v1/tenants', { name });
    assert.equal(tenant.status, 201, tenant.raw);
    const token = await h.call<Obj>('POST', `/api/v1/tenants/${tenant.body.id}/tokens`, { name: `${name} admin` });
    assert.equal(token.status, 201, token.raw);
    return { tenantId: tenant.body.id as string, token: token.body.token as string, tokenId: token.body.id as string };
  }

  it('records a server change by a tenant token with who, before and after, and no secret', async () => {
    const { tenantId, token, tokenId } = await tenantWithToken('Support');
    const created = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, serverBody(1), token);
    assert.equal(created.status, 201, created.raw);
    const serverId = created.body.id as string;
    const NEW_PASSWORD = 'second-canary-Pa55w0rd-19ab';
    const changed = await h.call<Obj>(
      'PATCH',
      `/api/v1/tenants/${tenantId}/servers/${serverId}`,
      {
        name: 'Support inbox',
        imap: {
          host: 'imap.example.com',
          user: 'agent1@example.com',
          auth: { method: 'password', password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD },
        },
      },
      token,
    );
    assert.equal(changed.status, 200, changed.raw);
    // A change that leaves the password alone says so.
    assert.equal(
      (await h.call('PATCH', `/api/v1/tenants/${tenantId}/servers/${serverId}`, { enabled: false }, token)).status,
      200,
    );

    const log = await h.call<Obj>('GET', '/api/v1/audit', undefined, token);
    assert.equal(log.status, 200, log.raw);
    assert.ok(!log.raw.includes(CANARY_PASSWORD) && !log.raw.includes(NEW_PASSWORD), 'a secret reached the audit log');
    const actions = log.body.entries.map((e: Obj) => e.action);
    assert.deepEqual(actions, [
      'server.updated',
      'server.updated',
      'server.created',
      'token.created',
      'tenant.created',
    ]);
    const [disabled, renamed, create] = log.body.entries as [Obj, Obj, Obj];
    assert.deepEqual(renamed.actor, { kind: 'token', tokenId, name: 'Support admin' });
    assert.equal(renamed.tenantId, tenantId);
    assert.deepEqual(renamed.target, { kind: 'server', id: serverId });
    assert.deepEqual(renamed.detail.before, { name: 'Server 1' });
    assert.deepEqual(renamed.detail.after, { name: 'Support inbox' });
    assert.equal(renamed.detail.secrets['imap.password'], 'changed');
    assert.equal(disabled.detail.secrets['imap.password'], 'unchanged');
    assert.deepEqual(disabled.detail.before, { enabled: true });
    assert.deepEqual(disabled.detail.after, { enabled: false });
    assert.equal(create.detail.after['imap.auth.hasPassword'], true);
    assert.equal(create.detail.secrets['imap.password'], 'changed');
    // The tenant was created by the configured administrator token (no id).
    assert.equal(log.body.entries[4].actor.tokenId, null);
    assert.match(log.body.entries[4].actor.name, /MAILROOM_API_TOKEN/);
    // The rows themselves hold no secret either.
    const raw = JSON.stringify(await h.store.query('SELECT * FROM audit_log'));
    assert.ok(!raw.includes(CANARY_PASSWORD) && !raw.includes(NEW_PASSWORD));
  });

  it("shows a tenant's token only its tenant's entries; administrators see all and filter", async () => {
    const a = await tenantWithToken('Alpha');
    const b = await tenantWithToken('Beta');
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${b.tenantId}/servers`, serverBody(2), b.token);
    await h.call('POST', `/api/v1/tenants/${b.tenantId}/destinations`, destinationBody(1, server.body.id), b.token);
    await h.call('POST', '/api/v1/tokens', { name: 'second admin' });

    const mine = await h.call<Obj>('GET', '/api/v1/audit', undefined, a.token);
    assert.equal(mine.status, 200);
    assert.ok(mine.body.entries.length > 0);
    assert.ok(
      mine.body.entries.every((e: Obj) => e.tenantId === a.tenantId),
      mine.raw,
    );
    assert.ok(!mine.raw.includes(b.tenantId) && !mine.raw.includes('Beta'), mine.raw);
    const other = await h.call<Obj>('GET', `/api/v1/audit?tenantId=${b.tenantId}`, undefined, a.token);
    assert.equal(other.status, 404);
    assert.equal(other.body.error.code, 'TENANT_NOT_FOUND');

    const all = await h.call<Obj>('GET', '/api/v1/audit');
    const actions = all.body.entries.map((e: Obj) => e.action);
    assert.ok(actions.includes('destination.created') && actions.includes('token.created'));
    // An administrator token's creation belongs to no tenant: administrators only.
    assert.ok(all.body.entries.some((e: Obj) => e.tenantId === null && e.action === 'token.created'));
    const onlyB = await h.call<Obj>('GET', `/api/v1/audit?tenantId=${b.tenantId}`);
    assert.ok(onlyB.body.entries.every((e: Obj) => e.tenantId === b.tenantId));
    assert.deepEqual(
      onlyB.body.entries.map((e: Obj) => e.action),
      ['destination.created', 'server.created', 'token.created', 'tenant.created'],
    );
    const future = await h.call<Obj>('GET', `/api/v1/audit?since=${new Date(Date.now() + 60_000).toISOString()}`);
    assert.deepEqual(future.body.entries, []);
  });

  it('pages with the cursor and refuses a cursor it did not give', async () => {
    const { tenantId } = await tenantWithToken('Paged');
    for (let i = 0; i < 110; i += 1) {
      await h.call('PATCH', `/api/v1/tenants/${tenantId}`, { name: `Paged ${i}` });
    }
    const first = await h.call<Obj>('GET', `/api/v1/audit?tenantId=${tenantId}`);
    assert.equal(first.body.entries.length, 100);
    assert.equal(first.body.entries[0].detail.after.name, 'Paged 109');
    const second = await h.call<Obj>('GET', `/api/v1/audit?tenantId=${tenantId}&cursor=${first.body.next}`);
    assert.equal(second.body.entries.length, 12);
    assert.equal(second.body.next, null);
    const bad = await h.call<Obj>('GET', '/api/v1/audit?cursor=abc');
    assert.equal(bad.body.error.field, 'cursor');
  });

  it('names the CLI and the operating-system user for changes made through the CLI', async () => {
    const tenant = await runAs(cliActor(), () => h.accounts.tenants.create({ name: 'From the shell' }));
    const log = await h.call<Obj>('GET', `/api/v1/audit?tenantId=${tenant.id}`);
    assert.deepEqual(log.body.entries[0].actor, {
      kind: 'cli',
      tokenId: null,
      name: `CLI (${userInfo().username})`,
    });
  });

  it('writes the entry in the transaction of the change: a refused change leaves none', async () => {
    const { tenantId, token } = await tenantWithToken('Rollback');
    await h.call('POST', `/api/v1/tenants/${tenantId}/servers`, serverBody(3), token);
    const dup = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, serverBody(3), token);
    assert.equal(dup.status, 409);
    const log = await h.call<Obj>('GET', '/api/v1/audit', undefined, token);
    assert.equal(log.body.entries.filter((e: Obj) => e.action === 'server.created').length, 1);
  });
});
