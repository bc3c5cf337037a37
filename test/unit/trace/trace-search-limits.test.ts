import assert from 'node:assert/strict';
import { TraceService } from '../../../src/trace/trace-service.js';
import type { Store } from '../../../src/store/store.js';

/** A store whose searches answer (nothing) only when released: searches stay running meanwhile. */
function heldStore(): { store: Store; release: () => void } {
  const waiting: Array<() => void> = [];
  const store = {
    traceSearch: {
      search: () => new Promise<never[]>((resolve) => waiting.push(() => resolve([]))),
    },
  } as unknown as Store;
  return { store, release: () => waiting.splice(0).forEach((r) => r()) };
}

const refused = (p: Promise<unknown>): Promise<void> =>
  assert.rejects(p, (e: { code?: string; retryAfterSeconds?: number }) => {
    assert.equal(e.code, 'TOO_MANY_SEARCHES');
    assert.equal(e.retryAfterSeconds, 1);
    return true;
  });

describe('message trace: searches one tenant (and the engine) may run at once', () => {
  it('refuses a tenant its third search while two run, and every search past four in all; frees them on answer', async () => {
    const { store, release } = heldStore();
    const trace = new TraceService(store, { perTenant: 2, total: 4 });
    const a = [trace.search('a', {}), trace.search('a', {})];
    await refused(trace.search('a', {}));
    const b = [trace.search('b', {}), trace.search('b', {})];
    await refused(trace.search('c', {}));
    release();
    await Promise.all([...a, ...b]);
    const again = trace.search('a', {});
    release();
    assert.deepEqual((await again).messages, [], 'answered once the others had');
  });
});
