import assert from 'node:assert/strict';
import { ByteBudget, type ByteHold } from '../../../src/shared/byte-budget.js';

/** Whether `promise` has settled after the microtasks queued so far have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('ByteBudget', () => {
  it('grants what fits at once and makes the rest wait until bytes are given back', async () => {
    const budget = new ByteBudget(100);
    const a = await budget.acquire(60);
    const b = budget.acquire(50);
    assert.equal(await settled(b), false, '60 + 50 does not fit in 100');
    assert.equal(budget.queued, 1);
    a.release();
    assert.equal(await settled(b), true);
    assert.equal(budget.inUse, 50);
    (await b).release();
    assert.equal(budget.inUse, 0);
    assert.equal(budget.peak, 60);
  });

  it('serves waiters first come, first served: a small request does not overtake a large one', async () => {
    const budget = new ByteBudget(100);
    const first = await budget.acquire(90);
    const large = budget.acquire(80);
    const small = budget.acquire(5); // would fit beside the first, but the large one asked before it
    assert.equal(await settled(small), false);
    first.release();
    assert.equal(await settled(large), true);
    assert.equal(await settled(small), true, '80 + 5 fit together');
    assert.equal(budget.inUse, 85);
  });

  it('lets a request larger than the whole budget go alone, once nothing else is held', async () => {
    const budget = new ByteBudget(100);
    const small = await budget.acquire(10);
    const huge = budget.acquire(500);
    assert.equal(await settled(huge), false);
    small.release();
    const hold = await huge;
    assert.equal(budget.inUse, 500);
    const next = budget.acquire(1);
    assert.equal(await settled(next), false, 'nothing joins an over-budget hold');
    hold.release();
    assert.equal(await settled(next), true);
  });

  it('gives back the difference when a hold shrinks to the real size, and releases once', async () => {
    const budget = new ByteBudget(100);
    const estimate: ByteHold = await budget.acquire(100);
    const waiter = budget.acquire(70);
    estimate.shrinkTo(30);
    assert.equal(estimate.bytes, 30);
    assert.equal(await settled(waiter), true, '30 + 70 fit');
    estimate.shrinkTo(50); // never grows
    assert.equal(estimate.bytes, 30);
    estimate.release();
    estimate.release();
    assert.equal(budget.inUse, 70);
  });

  it('refuses a budget of nothing', () => {
    assert.throws(() => new ByteBudget(0), RangeError);
  });
});
