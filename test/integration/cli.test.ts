import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isPostgresReachable, createTestDatabase } from '../support/database.js';
import { CANARY_PASSWORD, serverBody } from '../support/fixtures.js';
import { runCli } from '../support/processes.js';

describe('mailroom CLI (against PostgreSQL, over the services)', function () {
  this.timeout(60_000);
  let env: Record<string, string>;

  before(async function () {
    if (!(await isPostgresReachable())) {
      process.stdout.write('skipped: PostgreSQL is not reachable on 127.0.0.1:5432\n');
      this.skip();
    }
    env = {
      MAILROOM_DATABASE_URL: await createTestDatabase(),
      MAILROOM_SECRET_KEY: randomBytes(32).toString('base64'),
      MAILROOM_API_TOKEN: 'cli-test-token',
    };
  });

  it('creates a tenant, a server and a destination, and prints JSON with --json', async () => {
    const tenant = await runCli(['--json', 'tenants', 'create', 'CLI tenant'], env);
    assert.equal(tenant.code, 0, tenant.stderr);
    const tenantId = (JSON.parse(tenant.stdout) as { id: string }).id;

    const server = await runCli(
      ['--json', 'servers', 'create', 'CLI tenant', '--data', JSON.stringify(serverBody(1))],
      env,
    );
    assert.equal(server.code, 0, server.stderr);
    const created = JSON.parse(server.stdout) as {
      id: string;
      tenantId: string;
      imap: { auth: { hasPassword: boolean } };
    };
    assert.equal(created.tenantId, tenantId);
    assert.equal(created.imap.auth.hasPassword, true);
    assert.ok(!server.stdout.includes(CANARY_PASSWORD));

    const destination = await runCli(
      [
        '--json',
        'destinations',
        'create',
        tenantId,
        '--data',
        JSON.stringify({ name: 'Support', address: 'support@example.com', serverId: created.id }),
      ],
      env,
    );
    assert.equal(destination.code, 0, destination.stderr);

    const list = await runCli(['servers', 'list', 'CLI tenant'], env);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /Server 1\s+agent1@example.com@imap.example.com/);
  });

  it('reports rule violations with the code and field, and a non-zero exit', async () => {
    const refused = await runCli(['servers', 'delete', 'CLI tenant', 'Server 1'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /error SERVER_IN_USE: e-mail server 'Server 1' is used by destination 'Support'/);
    const invalid = await runCli(['servers', 'create', 'CLI tenant', '--data', '{"name":"x"}'], env);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /error VALIDATION_FAILED: 'imap' is required \[field: imap\]/);
  });

  it('has help for every command', async () => {
    const help = await runCli(['servers', '--help'], env);
    assert.equal(help.code, 0);
    for (const sub of ['list', 'show', 'create', 'update', 'copy', 'delete'])
      assert.match(help.stdout, new RegExp(`\\b${sub}\\b`));
  });
});
