import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from '../../../src/outbound/spool.js';
import { spoolHeader } from '../../support/spool-header.js';

/** Every entry under `dir` (itself included) with its permission bits, as `path mode`. */
async function modes(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (path: string): Promise<void> => {
    const stats = await lstat(path);
    out.push(`${path.slice(dir.length) || '/'} ${(stats.mode & 0o777).toString(8)}`);
    if (stats.isDirectory()) for (const name of await readdir(path)) await visit(join(path, name));
  };
  await visit(dir);
  return out;
}

describe('spool permissions', () => {
  let parent: string;
  let dir: string;
  let umask: number;
  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'mailroom-spool-modes-'));
    dir = join(parent, 'spool');
    // The usual umask, which let earlier versions create 0644 files and 0755 folders.
    umask = process.umask(0o022);
  });
  afterEach(async () => {
    process.umask(umask);
    await rm(parent, { recursive: true, force: true });
  });

  it('creates its folders 0700 and its files 0600: mail is readable by the engine user alone', async () => {
    const spool = new Spool(dir, { fsync: false });
    await spool.open();
    const queued = await spool.enqueue(spoolHeader('m1'), Buffer.from('Subject: hi\r\n\r\nsecret order 4711\r\n'));
    const dead = await spool.enqueue(spoolHeader('m2'), Buffer.from('Subject: bye\r\n\r\n.\r\n'));
    await spool.deadLetter(dead.item, {
      reply: '550 no such user',
      responseCode: 550,
      attempts: 1,
      firstAttemptAt: null,
      failedAt: new Date(0).toISOString(),
    });
    await spool.remove(queued.item);
    await spool.enqueue(spoolHeader('m3'), Buffer.from('Subject: again\r\n\r\n.\r\n'));
    await spool.close();
    const all = await modes(dir);
    assert.ok(all.length > 8, all.join('\n'));
    const open = all.filter((line) => !/ (600|700)$/.test(line));
    assert.deepEqual(open, [], 'entries readable by others');
  });

  it('takes access away from others for what earlier versions left (0644 files, 0755 folders), at start', async () => {
    for (const sub of ['queue/acct', 'dead/acct', 'sent/acct', 'free', 'corrupt', 'tmp'])
      await mkdir(join(dir, sub), { recursive: true, mode: 0o755 });
    await writeFile(join(dir, 'dead/acct/1-old.msg'), 'Subject: old\r\n\r\n.\r\n', { mode: 0o644 });
    await writeFile(join(dir, 'dead/acct/1-old.msg.json'), '{}', { mode: 0o644 });
    await writeFile(join(dir, 'corrupt/2-bad.msg'), 'damaged', { mode: 0o644 });
    await writeFile(join(dir, 'free/0'), 'x'.repeat(100), { mode: 0o664 });
    await writeFile(join(dir, 'LOCK'), '999999999\n', { mode: 0o644 });
    await chmod(dir, 0o755);
    const spool = new Spool(dir, { fsync: false });
    const { modesTightened } = await spool.open();
    await spool.close();
    assert.ok(modesTightened >= 10, `changed ${modesTightened}`);
    const open = (await modes(dir)).filter((line) => !/ (600|700)$/.test(line));
    assert.deepEqual(open, [], 'entries readable by others');
    const again = new Spool(dir, { fsync: false });
    assert.equal((await again.open()).modesTightened, 0, 'nothing to do the second time');
    await again.close();
  });
});
