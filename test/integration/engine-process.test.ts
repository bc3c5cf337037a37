import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runCli, startEngineProcess, waitForHttp } from '../support/processes.js';

/**
 * The newcomer's first run: `mailroom start` in an empty folder, with no configuration at all,
 * on the embedded database. It must answer /healthz, keep data across a restart, and stop on SIGTERM.
 */
describe('engine process (embedded database, no configuration)', function () {
  this.timeout(300_000);
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-first-run-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function runOnce(port: number, action: (base: string, token: string) => Promise<void>): Promise<string> {
    const { child, output } = startEngineProcess({ MAILROOM_HTTP_PORT: String(port) }, dir);
    try {
      const base = `http://127.0.0.1:${port}`;
      // A first start creates the embedded database: over a minute on a loaded 2-core machine.
      await waitForHttp(`${base}/healthz`, 150_000, child);
      const token = (await readFile(join(dir, 'data', 'api-token'), 'utf8')).trim();
      await action(base, token);
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const [code] = (await once(child, 'exit')) as [number | null];
        assert.equal(code, 0, `graceful stop exits 0; output:\n${output()}`);
      }
    }
    return output();
  }

  it('starts, serves the API, stops gracefully and keeps its data across a restart', async () => {
    const port = await freePort();
    const firstOutput = await runOnce(port, async (base, token) => {
      const res = await fetch(`${base}/api/v1/tenants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'First run' }),
      });
      assert.equal(res.status, 201);
    });
    assert.match(firstOutput, /administrator API token/);
    assert.match(firstOutput, /generated a new secret key/);
    assert.match(firstOutput, /stopped/);

    const secondOutput = await runOnce(port, async (base, token) => {
      const res = await fetch(`${base}/api/v1/tenants`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as { tenants: Array<{ name: string }> };
      assert.deepEqual(
        body.tenants.map((t) => t.name),
        ['First run'],
      );
    });
    assert.doesNotMatch(secondOutput, /administrator API token/, 'the token is printed on the first start only');
  });

  it('refuses CLI commands at once while the engine holds the embedded database, and works after it stopped', async () => {
    const port = await freePort();
    const lockFile = join(dir, 'data', 'pglite.lock');
    await runOnce(port, async (base, token) => {
      // Refused, not left waiting for the engine to stop: a command that hangs is killed (code null).
      const refused = await runCli(['tenants', 'create', 'Lost while running'], {}, dir, 90_000);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /error DATABASE_LOCKED: the embedded database .* is in use by process \d+/);
      assert.match(refused.stderr, /stop it first, or make the change through its HTTP API or web console/);
      assert.equal(refused.stdout, '', 'nothing is printed as if it had worked');
      const pid = Number((await readFile(lockFile, 'utf8')).trim());
      assert.ok(pid > 0 && pid !== process.pid, 'the engine holds the lock with its process id');
      const res = await fetch(`${base}/api/v1/tenants`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as { tenants: Array<{ name: string }> };
      assert.ok(!body.tenants.some((t) => t.name === 'Lost while running'));
    });
    await assert.rejects(readFile(lockFile), { code: 'ENOENT' }, 'a graceful stop removes the lock');

    const created = await runCli(['--json', 'tenants', 'create', 'Made while stopped'], {}, dir, 60_000);
    assert.equal(created.code, 0, created.stderr);

    // A lock left by a process that is gone (a crash) is taken over.
    await writeFile(lockFile, '999999999\n');
    const listed = await runCli(['--json', 'tenants', 'list'], {}, dir, 60_000);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok((JSON.parse(listed.stdout) as Array<{ name: string }>).some((t) => t.name === 'Made while stopped'));
    await assert.rejects(readFile(lockFile), { code: 'ENOENT' }, 'the CLI releases the lock it took over');

    await runOnce(port, async (base, token) => {
      const res = await fetch(`${base}/api/v1/tenants`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as { tenants: Array<{ name: string }> };
      assert.ok(
        body.tenants.some((t) => t.name === 'Made while stopped'),
        'the engine sees what the CLI wrote',
      );
    });
  });
});
