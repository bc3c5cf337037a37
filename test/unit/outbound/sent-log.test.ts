import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SentLog } from '../../../src/outbound/sent-log.js';
import { Spool } from '../../../src/outbound/spool.js';
import { spoolHeader } from '../../support/spool-header.js';

describe('spool sent log', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-sent-log-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const header = spoolHeader;
  const message = (id: string) => Buffer.from(`Subject: ${id}\r\n\r\n.\r\n`);
  const logPath = () => join(dir, 'sent', 'delivered.log');

  it('keeps a marked delivery out of the queue, lists it as sent with its time, across a restart, until removed', async () => {
    let now = 1_700_000_000_000;
    const spool = new Spool(dir, { now: () => now });
    await spool.open();
    const a = (await spool.enqueue(header('a'), message('a'))).item;
    await spool.enqueue(header('b'), message('b'));
    now += 5_000;
    spool.markSent(a);
    assert.deepEqual(
      (await spool.list('acct')).map((i) => i.id),
      ['b'],
    );
    const sent = await spool.listSent('acct');
    assert.deepEqual(
      sent.map((i) => [i.id, i.sentAt.getTime(), i.file]),
      [['a', now, a.file]],
    );
    await spool.close();

    // A new process (the engine was killed after the 250): still delivered, never queued again.
    const again = new Spool(dir);
    await again.open();
    assert.deepEqual(
      (await again.list('acct')).map((i) => i.id),
      ['b'],
    );
    const [left] = await again.listSent('acct');
    assert.ok(left);
    assert.equal(left.id, 'a');
    await again.remove(left);
    assert.deepEqual(await again.listSent('acct'), []);
    assert.deepEqual(
      (await again.list('acct')).map((i) => i.id),
      ['b'],
    );
    await again.close();

    // At the next start the log holds nothing but what still waits: the removed delivery is gone from it.
    const third = new Spool(dir);
    await third.open();
    assert.equal(await readFile(logPath(), 'utf8'), '');
    assert.deepEqual(
      (await third.list('acct')).map((i) => i.id),
      ['b'],
    );
    await third.close();
  });

  it('skips a line cut short (a crash or a full disk mid-write) and rewrites the log before the next mark', async () => {
    const spool = new Spool(dir);
    await spool.open();
    const a = (await spool.enqueue(header('a'), message('a'))).item;
    const b = (await spool.enqueue(header('b'), message('b'))).item;
    spool.markSent(a);
    await spool.close();
    await appendFile(logPath(), `acct/${b.name} 17`.slice(0, -4)); // half a line, no time
    const log = new SentLog(logPath());
    assert.deepEqual([...log.read().keys()], [`acct/${a.name}`], 'the torn line marks nothing');

    const again = new Spool(dir);
    await again.open();
    assert.deepEqual(
      (await again.list('acct')).map((i) => i.id),
      ['b'],
      'b was not marked: it is still to be sent',
    );
    again.markSent(b);
    const lines = (await readFile(logPath(), 'utf8')).trimEnd().split('\n');
    assert.deepEqual(
      lines.map((l) => l.split(' ')[0]),
      [`acct/${a.name}`, `acct/${b.name}`],
    );
    await again.close();
  });

  it('after a failed append, rewrites the log whole before writing the next mark', () => {
    const log = new SentLog(join(dir, 'delivered.log'));
    log.rewrite(new Map());
    // As a full disk does: the write fails (here, on a descriptor that is not open).
    const internals = log as unknown as { fd: number };
    closeSync(internals.fd);
    internals.fd = 1_000_000;
    assert.throws(() => log.append('acct/1-x.msg', 1, new Map()), /EBADF/);
    const waiting = new Map([['acct/2-y.msg', 2]]);
    log.append('acct/3-z.msg', 3, waiting);
    assert.deepEqual([...log.read().keys()], ['acct/2-y.msg', 'acct/3-z.msg']);
    log.close();
  });

  it('stays small: rewritten with the waiting deliveries once it has grown well past them', async () => {
    const spool = new Spool(dir, { fsync: false });
    await spool.open();
    for (let n = 0; n < 3_000; n += 1) {
      const { item } = await spool.enqueue(header(`m${n}`), message(`m${n}`));
      spool.markSent(item);
      await spool.remove(item);
    }
    const lines = (await readFile(logPath(), 'utf8')).split('\n').length - 1;
    assert.ok(lines <= 1_025, `${lines} lines in the log`);
    assert.ok((await stat(logPath())).size < 100_000);
    assert.deepEqual(await spool.listSent('acct'), []);
    await spool.close();
  });
});
