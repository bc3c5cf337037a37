import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from '../../../src/outbound/spool.js';
import { spoolHeader } from '../../support/spool-header.js';

describe('spool file recycling', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-spool-recycle-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const header = spoolHeader;

  it('writes the next message over a delivered message’s file, and reads back only the new bytes', async () => {
    const spool = new Spool(dir);
    await spool.open();
    const long = Buffer.from(`Subject: first\r\n\r\n${'x'.repeat(5000)}\r\n`);
    const first = await spool.enqueue(header('m1'), long);
    const inode = (await stat(first.item.file)).ino;
    await spool.remove(first.item);
    assert.deepEqual(await spool.list('acct'), []);
    assert.equal((await readdir(join(dir, 'free'))).length, 1);

    const short = Buffer.from('Subject: second\r\n\r\nhi\r\n');
    const second = await spool.enqueue(header('m2'), short);
    assert.equal((await stat(second.item.file)).ino, inode, 'the same file, renamed back into the queue');
    assert.equal((await readdir(join(dir, 'free'))).length, 0);
    const read = await spool.read(second.item);
    assert.deepEqual(read.raw, short);
    assert.equal(read.header.id, 'm2');
    // Overwritten from its start, not emptied: it keeps its length, zeros past the new message,
    // none of the earlier message's bytes (an erasure could not reach them there).
    const end = read.header.size + Buffer.byteLength(`${JSON.stringify(read.header)}\n`);
    const bytes = await readFile(second.item.file);
    assert.ok(bytes.length > end, 'the file keeps its length');
    assert.ok(!bytes.includes('xxxx'), 'nothing of the earlier message is left');
    assert.ok(!bytes.includes('first'), 'nothing of the earlier message is left');
    assert.ok(
      bytes.subarray(end).every((b) => b === 0),
      'zeros past the new message',
    );
    await spool.close();
  });

  it('keeps delivered files within maxFreeBytes (whole 4 KiB blocks) and reuses those left by an earlier process', async () => {
    const spool = new Spool(dir, { maxFreeBytes: 2 * 4096 });
    await spool.open();
    const items = [];
    for (const id of ['a', 'b', 'c'])
      items.push((await spool.enqueue(header(id), Buffer.from(`Subject: ${id}\r\n\r\n.\r\n`))).item);
    for (const item of items) await spool.remove(item);
    assert.equal((await readdir(join(dir, 'free'))).length, 2, 'two small files take two blocks');
    await spool.close();

    const again = new Spool(dir, { maxFreeBytes: 2 * 4096 });
    await again.open();
    const next = await again.enqueue(header('d'), Buffer.from('Subject: d\r\n\r\n.\r\n'));
    assert.equal((await readdir(join(dir, 'free'))).length, 1);
    assert.equal((await again.read(next.item)).header.id, 'd');
    await again.close();
  });

  it('counts a recycled file at the length it keeps, not at the shorter message written into it', async () => {
    const spool = new Spool(dir, { maxFreeBytes: 3 * 4096 });
    await spool.open();
    const long = Buffer.from(`Subject: long\r\n\r\n${'x'.repeat(3 * 4096)}\r\n`); // four blocks
    const first = await spool.enqueue(header('long'), long);
    assert.ok(first.item.bytes !== undefined && first.item.bytes > 3 * 4096);
    await spool.discard(await spool.write(header('filler'), Buffer.from('Subject: f\r\n\r\n.\r\n')));
    // Over the budget: the long file is deleted, not kept.
    await spool.remove(first.item);
    assert.equal((await readdir(join(dir, 'free'))).length, 1, 'only the one-block file is kept');
    await spool.close();

    const roomy = new Spool(join(dir, 'roomy'), { maxFreeBytes: 8 * 4096 });
    await roomy.open();
    const longItem = (await roomy.enqueue(header('long2'), long)).item;
    await roomy.remove(longItem);
    const short = await roomy.enqueue(header('short'), Buffer.from('Subject: s\r\n\r\n.\r\n'));
    assert.equal(short.item.bytes, longItem.bytes, 'the reused file keeps the longer length');
    await roomy.close();
  });

  it('deletes a delivered file over 64 KiB instead of keeping it for reuse (it would keep its length)', async () => {
    const spool = new Spool(dir);
    await spool.open();
    const big = Buffer.from(`Subject: big\r\n\r\n${'x'.repeat(70 * 1024)}\r\n`);
    const small = Buffer.from('Subject: small\r\n\r\n.\r\n');
    await spool.remove((await spool.enqueue(header('big'), big)).item);
    assert.equal((await readdir(join(dir, 'free'))).length, 0, 'the large file is gone');
    await spool.enqueue(header('big2'), big);
    const [listed] = await spool.list('acct'); // as found by a listing: no length known, read from the disk
    assert.ok(listed);
    await spool.remove(listed);
    assert.equal((await readdir(join(dir, 'free'))).length, 0, 'the listed large file is gone too');
    await spool.remove((await spool.enqueue(header('small'), small)).item);
    assert.equal((await readdir(join(dir, 'free'))).length, 1, 'a small one is kept');
    await spool.close();
  });

  it('deletes, at start, files in free/ over 64 KiB (left by a version that emptied files before reuse)', async () => {
    await mkdir(join(dir, 'free'), { recursive: true });
    await writeFile(join(dir, 'free', 'old-large'), Buffer.alloc(70 * 1024));
    await writeFile(join(dir, 'free', 'old-small'), Buffer.alloc(2 * 1024));
    const spool = new Spool(dir);
    await spool.open();
    assert.deepEqual(await readdir(join(dir, 'free')), ['old-small']);
    const next = await spool.enqueue(header('m1'), Buffer.from('Subject: m1\r\n\r\n.\r\n'));
    assert.deepEqual(await readdir(join(dir, 'free')), [], 'the small one is reused');
    assert.equal((await spool.read(next.item)).header.id, 'm1');
    await spool.close();
  });

  it('keeps a written message out of the queue until it is committed, and a discarded one never enters it', async () => {
    const spool = new Spool(dir);
    await spool.open();
    const kept = await spool.write(header('kept'), Buffer.from('Subject: kept\r\n\r\n.\r\n'));
    const dropped = await spool.write(header('dropped'), Buffer.from('Subject: dropped\r\n\r\n.\r\n'));
    assert.deepEqual(await spool.list('acct'), [], 'written, not yet queued');
    await spool.discard(dropped);
    const committed = await spool.commit(kept);
    assert.deepEqual(
      (await spool.list('acct')).map((i) => i.id),
      ['kept'],
    );
    assert.equal((await spool.read(committed.item)).header.id, 'kept');
    assert.equal((await readdir(join(dir, 'free'))).length, 1, 'the discarded file waits to be reused');
    const next = await spool.enqueue(header('next'), Buffer.from('Subject: next\r\n\r\n.\r\n'));
    assert.equal((await spool.read(next.item)).header.id, 'next');
    assert.equal((await readdir(join(dir, 'free'))).length, 0);
    await spool.close();
  });

  it('leaves nothing in the queue when the folder cannot be synced after the rename', async () => {
    const spool = new Spool(dir);
    await spool.open();
    (spool as unknown as { syncDirNow: () => Promise<void> }).syncDirNow = () =>
      Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    await assert.rejects(spool.enqueue(header('lost'), Buffer.from('Subject: x\r\n\r\n.\r\n')), (err: Error) => {
      assert.equal((err as Error & { code?: string }).code, 'SPOOL_UNAVAILABLE');
      return true;
    });
    assert.deepEqual(await spool.list('acct'), [], 'a message that was refused must never be sent');
    await spool.close();
  });
});
