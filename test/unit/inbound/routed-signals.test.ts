import assert from 'node:assert/strict';
import { RoutedSignals } from '../../../src/inbound/routed-signals.js';
import { noNotifications, type Notifications } from '../../../src/store/notifications.js';
import { capturingLogger } from '../../support/log-capture.js';

const { logger } = capturingLogger('debug');

describe('routed signals', () => {
  const never = new AbortController().signal;

  it('wakes the waits of the destination routed to, not the others, and remembers a signal that came first', async () => {
    const signals = new RoutedSignals(noNotifications, logger);
    const a = signals.watch('dest-a', 0);
    const b = signals.watch('dest-b', 0);
    const woken = a.next(5_000, never);
    let bWoken = false;
    void b.next(5_000, never).then(() => (bWoken = true));
    signals.routed(['dest-a']);
    assert.equal(await woken, 'signal');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(bWoken, false);
    // Routed while nobody was in next(): the next call answers at once.
    signals.routed(['dest-a']);
    assert.equal(await a.next(5_000, never), 'signal');
    assert.equal(await a.next(5, never), 'timeout');
    a.close();
    b.close();
    assert.equal(signals.waiting, 0);
  });

  it('reads the latest seqs once for all waits and wakes only those behind, when a signal was missed', async () => {
    const reads: string[][] = [];
    const signals = new RoutedSignals(noNotifications, logger, {
      safetyIntervalMs: 20,
      latestSeqs: async (ids) => {
        reads.push([...ids].sort());
        return new Map([
          ['dest-a', 7],
          ['dest-b', 3],
        ]);
      },
    });
    const behind = signals.watch('dest-a', 5);
    const current = signals.watch('dest-b', 3);
    const alsoCurrent = signals.watch('dest-b', 3);
    let currentWoken = false;
    void current.next(5_000, never).then((why) => (currentWoken = why === 'signal'));
    void alsoCurrent.next(5_000, never);
    assert.equal(await behind.next(5_000, never), 'signal');
    assert.equal(currentWoken, false, 'a wait that has the latest seq stays asleep');
    assert.deepEqual(reads[0], ['dest-a', 'dest-b'], 'one read for every destination waited on');
    behind.close();
    current.close();
    alsoCurrent.close();
    signals.stop();
  });

  it('announces routed destinations to the other instances once per burst and ignores its own', async () => {
    const published: string[] = [];
    let deliver: ((payload: string) => void) | undefined;
    const bus: Notifications = {
      publish: async (_channel, payload) => {
        published.push(payload);
      },
      subscribe: (_channel, onMessage) => {
        deliver = onMessage;
        return () => undefined;
      },
      close: async () => undefined,
    };
    const signals = new RoutedSignals(bus, logger, { instanceId: 'me' });
    signals.start();
    const heard: Array<readonly string[] | null> = [];
    signals.subscribe((ids) => heard.push(ids));
    signals.routed(['d1']);
    signals.routed(['d2', 'd1']);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      published.map((p) => JSON.parse(p)),
      [{ i: 'me', d: ['d1', 'd2'] }],
    );
    deliver?.(published[0] as string); // its own announcement, heard back
    deliver?.(JSON.stringify({ i: 'other', d: ['d9'] }));
    deliver?.('not json');
    assert.deepEqual(heard, [['d1'], ['d2', 'd1'], ['d9']]);
    signals.stop();
  });
});
