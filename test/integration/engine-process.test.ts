import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startEngineProcess, waitForHttp } from '../support/processes.js';

/**
 * The newcomer's first run: `mailroom start` in an empty folder, with no configuration at all,
 * on the embedded database. It must answer /healthz, keep data across a restart, and stop on SIGTERM.
 */
describe('engine process (embedded database, no configuration)', function () {
  this.timeout(120_000);
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
      await waitForHttp(`${base}/healthz`, 60_000, child);
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
});
