import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { processGone, processPlace } from '../../../src/shared/process-place.js';

describe('process place (may a pid be trusted here)', () => {
  it('names the host, the kernel boot and the PID namespace on Linux', function () {
    if (process.platform !== 'linux') this.skip();
    const place = processPlace();
    assert.ok(place?.startsWith(`${hostname()}/`), String(place));
    assert.match(String(place), /\/pid:\[\d+\]$/);
  });

  it('calls a pid gone only when no process holds it', async () => {
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    const pid = child.pid as number;
    await once(child, 'exit');
    assert.equal(processGone(pid), true, 'an exited child');
    assert.equal(processGone(process.ppid), false, 'the parent runs');
    assert.equal(processGone(process.pid), false, 'our own pid is never called gone');
    assert.equal(processGone(0), false);
    assert.equal(processGone(-1), false);
  });
});
