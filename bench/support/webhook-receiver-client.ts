import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { addCleanup } from '../../test/support/cleanup.js';

type FromChild =
  { type: 'listening'; port: number } | { type: 'armed' } | { type: 'done'; posts: number; connections: number };

/** The receiver process of bench/support/webhook-receiver.ts, as the benchmark drives it. */
export interface WebhookReceiver {
  url: string;
  port: number;
  /**
   * Starts counting anew; resolves once the receiver counts, with a promise of when
   * (performance.now()) `count` distinct keys arrived.
   */
  expect(count: number): Promise<{ done: Promise<{ at: number; posts: number; connections: number }> }>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'webhook-receiver.ts');
  const child: ChildProcess = fork(script, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  addCleanup(async () => {
    child.kill();
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('message', (m: FromChild) =>
      m.type === 'listening' ? resolve(m.port) : reject(new Error('unexpected')),
    );
  });
  return {
    port,
    url: `http://127.0.0.1:${port}/hooks`,
    async expect(count) {
      let armed: () => void = () => undefined;
      const ready = new Promise<void>((resolve) => (armed = resolve));
      const done = new Promise<{ at: number; posts: number; connections: number }>((resolve) => {
        const onMessage = (m: FromChild): void => {
          if (m.type === 'armed') return armed();
          if (m.type !== 'done') return;
          child.off('message', onMessage);
          resolve({ at: performance.now(), posts: m.posts, connections: m.connections });
        };
        child.on('message', onMessage);
        child.send({ type: 'expect', count });
      });
      await ready;
      return { done };
    },
  };
}
