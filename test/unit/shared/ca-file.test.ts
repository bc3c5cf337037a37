import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, mkdtemp, open, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCaFile, readCaFileIn } from '../../../src/shared/ca-file.js';
import { makeTestCertificates } from '../../../src/harness/fake-idp/certificates.js';

/** The rejection of `readCaFile`, or 'still waiting' when it has not settled within `ms`. */
async function outcome(path: string, ms = 5_000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const waiting = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('still waiting'), ms);
  });
  try {
    return await Promise.race([
      readCaFile(path).then(
        () => 'read',
        (err: Error) => err.message,
      ),
      waiting,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('CA file', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-ca-file-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a FIFO at once instead of waiting for a writer', async () => {
    const fifo = join(dir, 'ca.pem');
    execFileSync('mkfifo', [fifo]);
    try {
      assert.match(await outcome(fifo), /is not a regular file/);
    } finally {
      // A read that blocked on the FIFO (the bug) holds a thread of the pool: give it a writer.
      await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).then(
        (handle) => handle.close(),
        () => undefined,
      );
    }
  });

  it('refuses a device and a directory without reading them', async () => {
    assert.match(await outcome('/dev/zero'), /is not a regular file/);
    assert.match(await outcome(dir), /is a directory/);
  });

  it('refuses a file larger than 1 MiB', async () => {
    const big = join(dir, 'big.pem');
    await writeFile(big, Buffer.alloc(1024 * 1024 + 1, 0x41));
    assert.match(await outcome(big), /is larger than 1048576 bytes/);
  });

  it('reads a CA file only inside MAILROOM_CA_DIR, links followed', async () => {
    const cas = join(dir, 'cas');
    await mkdir(cas);
    const outside = join(dir, 'outside.pem');
    const { ca } = makeTestCertificates();
    await writeFile(join(cas, 'ca.pem'), ca);
    await writeFile(outside, ca);
    await symlink(outside, join(cas, 'link-out.pem'));
    const why = (dirSetting: string | undefined, path: string): Promise<string> =>
      readCaFileIn(dirSetting, path).then(
        () => 'read',
        (err: Error) => err.message,
      );
    assert.equal(await why(cas, join(cas, 'ca.pem')), 'read');
    assert.match(await why(cas, outside), /is not inside the CA directory/);
    assert.match(await why(cas, join(cas, 'link-out.pem')), /is not inside the CA directory/);
    assert.match(await why(cas, join(cas, '..', 'outside.pem')), /is not inside the CA directory/);
    assert.match(await why(cas, cas), /is not inside the CA directory/);
    assert.match(await why(undefined, join(cas, 'ca.pem')), /no CA directory is configured \(MAILROOM_CA_DIR\)/);
  });
});
