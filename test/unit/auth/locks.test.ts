import assert from 'node:assert/strict';
import { KeyedLock } from '../../../src/auth/oauth/keyed-lock.js';
import { Semaphore } from '../../../src/auth/oauth/semaphore.js';

/** A promise the test resolves by hand. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('KeyedLock and Semaphore (refresh locks in one process)', () => {
  it('KeyedLock: one holder per key, in arrival order; other keys do not wait; a failure releases', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const first = gate();
    const a1 = lock.run('a', async () => {
      order.push('a1 start');
      await first.promise;
      order.push('a1 end');
      throw new Error('a1 failed');
    });
    const a2 = lock.run('a', async () => {
      order.push('a2');
      return 2;
    });
    const b = lock.run('b', async () => {
      order.push('b');
      return 'b';
    });
    assert.equal(await b, 'b');
    await settle();
    assert.deepEqual(order, ['a1 start', 'b']);
    first.open();
    await assert.rejects(a1, /a1 failed/);
    assert.equal(await a2, 2);
    assert.deepEqual(order, ['a1 start', 'b', 'a1 end', 'a2']);
  });

  it('Semaphore: at most `size` at once, the rest in arrival order', async () => {
    const slots = new Semaphore(2);
    const gates = [gate(), gate(), gate(), gate()];
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const runs = gates.map((g, i) =>
      slots.run(async () => {
        started.push(i);
        running += 1;
        most = Math.max(most, running);
        await g.promise;
        running -= 1;
      }),
    );
    await settle();
    assert.deepEqual(started, [0, 1]);
    gates[1]?.open();
    await settle();
    assert.deepEqual(started, [0, 1, 2]);
    for (const g of gates) g.open();
    await Promise.all(runs);
    assert.deepEqual(started, [0, 1, 2, 3]);
    assert.equal(most, 2);
  });
});
