import assert from 'node:assert/strict';
import { GroupCommit } from '../../../src/outbound/group-commit.js';

describe('GroupCommit', () => {
  it('writes the first item at once and the items that arrive meanwhile together', async () => {
    const writes: number[][] = [];
    let release: () => void = () => undefined;
    const group = new GroupCommit<number>(async (items) => {
      writes.push(items);
      if (writes.length === 1) await new Promise<void>((resolve) => (release = resolve));
    });
    const first = group.add(1);
    await new Promise((resolve) => setImmediate(resolve)); // the first write is running
    const rest = [group.add(2), group.add(3), group.add(4)];
    release();
    await Promise.all([first, ...rest]);
    assert.deepEqual(writes, [[1], [2, 3, 4]]);
  });

  it('rejects the callers of a failed batch only, and keeps going', async () => {
    let fail = true;
    const group = new GroupCommit<string>(async () => {
      if (fail) {
        fail = false;
        throw new Error('disk on fire');
      }
    });
    await assert.rejects(group.add('a'), /disk on fire/);
    await group.add('b');
  });

  it('splits large batches at maxBatch', async () => {
    const sizes: number[] = [];
    const group = new GroupCommit<number>(async (items) => {
      sizes.push(items.length);
    }, 2);
    await Promise.all([1, 2, 3, 4, 5].map((n) => group.add(n)));
    assert.deepEqual(sizes, [2, 2, 1]);
  });

  it('gives every caller of a batch what its write returned', async () => {
    const group = new GroupCommit<number, number[]>(async (items) => items.map((n) => n * 2));
    const results = await Promise.all([1, 2, 3].map((n) => group.add(n)));
    assert.deepEqual(results, [
      [2, 4, 6],
      [2, 4, 6],
      [2, 4, 6],
    ]);
  });

  it('with delayMs, lets items that arrive within the delay join the write', async () => {
    const writes: number[][] = [];
    const group = new GroupCommit<number>(
      async (items) => {
        writes.push(items);
      },
      500,
      30,
    );
    const first = group.add(1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await Promise.all([first, group.add(2)]);
    assert.deepEqual(writes, [[1, 2]]);
  });

  it('with expectMore saying nothing else is on its way, writes a lone item without the delay', async () => {
    const writes: number[][] = [];
    const asked: number[] = [];
    const group = new GroupCommit<number>(
      async (items) => {
        writes.push(items);
      },
      500,
      10_000,
      (waiting) => {
        asked.push(waiting);
        return false;
      },
    );
    const started = Date.now();
    await group.add(1);
    assert.ok(Date.now() - started < 5_000, 'the write waited for the delay');
    assert.deepEqual(writes, [[1]]);
    assert.deepEqual(asked, [1]);
  });

  it('with expectMore saying more are on their way, waits the delay for them', async () => {
    const writes: number[][] = [];
    const group = new GroupCommit<number>(
      async (items) => {
        writes.push(items);
      },
      500,
      30,
      (waiting) => waiting < 2,
    );
    const first = group.add(1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await Promise.all([first, group.add(2)]);
    assert.deepEqual(writes, [[1, 2]]);
  });
});
