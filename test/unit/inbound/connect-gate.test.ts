import assert from 'node:assert/strict';
import { ConnectGate } from '../../../src/inbound/connect-gate.js';

describe('IMAP connect gate', () => {
  it('keeps set-ups within the global and the per-host limits, and runs them all', async () => {
    const gate = new ConnectGate({ concurrency: 5, perHost: 2 });
    const running = new Map<string, number>();
    let runningAll = 0;
    let peakAll = 0;
    const peakHost = new Map<string, number>();
    const hosts = ['a.example', 'B.example', 'c.example', 'd.example'];
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const host = hosts[i % hosts.length] as string;
        return gate.run(host, async () => {
          const key = host.toLowerCase();
          running.set(key, (running.get(key) ?? 0) + 1);
          runningAll++;
          peakAll = Math.max(peakAll, runningAll);
          peakHost.set(key, Math.max(peakHost.get(key) ?? 0, running.get(key) ?? 0));
          await new Promise((r) => setTimeout(r, 5));
          running.set(key, (running.get(key) ?? 0) - 1);
          runningAll--;
          return i;
        });
      }),
    );
    assert.deepEqual(
      results,
      Array.from({ length: 40 }, (_, i) => i),
    );
    assert.ok(peakAll <= 5 && peakAll >= 4, `global peak ${peakAll}`);
    for (const [host, peak] of peakHost) assert.equal(peak, 2, `${host} peak ${peak}`);
    assert.equal(gate.waiting, 0);
  });

  it('passes a failed set-up’s error to its caller without blocking the others', async () => {
    const gate = new ConnectGate({ concurrency: 1, perHost: 1 });
    const failed = gate.run('h', async () => {
      throw new Error('refused');
    });
    const ok = gate.run('h', async () => 'connected');
    await assert.rejects(failed, /refused/);
    assert.equal(await ok, 'connected');
  });
});
