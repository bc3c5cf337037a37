import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { isPostgresReachable } from '../support/database.js';
import { CLI_ENTRY, PROJECT_ROOT } from '../support/processes.js';
import { deviceCodeAuth } from '../support/fixtures.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

describe('mailroom oauth login (CLI against the engine API)', function () {
  this.timeout(60_000);
  let h: ApiHarness;
  let idp: FakeIdp;

  before(async () => {
    idp = await startFakeIdp({ pollIntervalSeconds: 1 });
    const kind = (await isPostgresReachable()) ? 'postgres' : 'pglite';
    h = await openApiHarness(kind, FAST_INBOUND, {}, {}, { identityProviderCa: idp.ca });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await h.close();
    await idp.close();
  });

  it('prints the code and the URL, waits, and exits 0 once the sign-in is complete', async () => {
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'CLI OAuth' })).body.id;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Office 365',
      imap: {
        host: '127.0.0.1',
        port: 993,
        user: 'cli@contoso.test',
        auth: deviceCodeAuth(idp.url),
      },
      smtp: { host: '127.0.0.1', port: 587, auth: { mode: 'imap' } },
    });
    assert.equal(server.status, 201, server.raw);
    const port = (h.app.server.address() as AddressInfo).port;
    const child = spawn(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        CLI_ENTRY,
        'oauth',
        'login',
        'CLI OAuth',
        'Office 365',
        '--purpose',
        'imap',
        '--url',
        `http://127.0.0.1:${port}`,
        '--token',
        h.adminToken,
      ],
      { cwd: PROJECT_ROOT, env: { ...process.env, MAILROOM_LOG_PRETTY: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        const match = /Code: ([A-Z]+)/.exec(stdout);
        if (match?.[1]) resolve(match[1]);
      });
      child.once('exit', () => reject(new Error(`CLI exited early: ${stdout}${stderr}`)));
    });
    assert.match(stdout, new RegExp(`Open: ${idp.url}/devicelogin`));
    assert.ok(idp.approve(code, 'cli@contoso.test'));
    const [exitCode] = (await once(child, 'exit')) as [number | null];
    assert.equal(exitCode, 0, stdout + stderr);
    assert.match(stdout, /IMAP sign-in: COMPLETE as cli@contoso\.test/);
  });
});
