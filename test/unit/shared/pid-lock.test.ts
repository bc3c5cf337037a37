import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { releasePidLock, takePidLock } from '../../../src/shared/pid-lock.js';

describe('pid lock files', () => {
  let dir: string;
  let file: string;
  const refuse = (holder: number): Error => new Error(`held by ${holder}`);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-pid-lock-'));
    file = join(dir, 'LOCK');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is taken with this process id, 0600, and released', async () => {
    await takePidLock(file, refuse);
    assert.equal(await readFile(file, 'utf8'), `${process.pid}\n`);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    await releasePidLock(file);
    await assert.rejects(stat(file), { code: 'ENOENT' });
  });

  it('is refused while a live process holds it, naming that process', async () => {
    // The test runner's parent (the shell or npm) runs while this test does.
    await writeFile(file, `${process.ppid}\n`);
    await assert.rejects(takePidLock(file, refuse), { message: `held by ${process.ppid}` });
    await releasePidLock(file);
    assert.equal(await readFile(file, 'utf8'), `${process.ppid}\n`, 'another process’s lock is left alone');
  });

  it('takes over a lock whose process is gone, or that names none', async () => {
    for (const stale of ['999999999\n', '', 'garbage']) {
      await writeFile(file, stale);
      await takePidLock(file, refuse);
      assert.equal(await readFile(file, 'utf8'), `${process.pid}\n`);
      await releasePidLock(file);
    }
  });
});
