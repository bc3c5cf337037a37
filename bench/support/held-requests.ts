/**
 * What the long-poll and event-stream benchmarks share: HTTP clients that hold many requests
 * open on one kept-alive agent, and the bare baseline server (node:http holding each request
 * until told that its destination has a message, reading no database).
 */
import { Agent, createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { addCleanup } from '../../test/support/cleanup.js';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 10 ms until it holds; fails naming `what` after `ms`. */
export async function until(check: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error(`${what}: not reached within ${ms} ms`);
    await sleep(10);
  }
}

export function heldAgent(): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  addCleanup(async () => agent.destroy());
  return agent;
}

/** GETs `path`; resolves with performance.now() when the whole answer arrived, and its body. */
export function timedGet(
  agent: Agent,
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ at: number; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.once('end', () => resolve({ at: performance.now(), status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** Opens an event stream; calls `onEvent(performance.now())` for each `message.routed` event. */
export function openStream(
  agent: Agent,
  port: number,
  path: string,
  headers: Record<string, string>,
  onEvent: (at: number) => void,
): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (c: string) => {
        buffer += c;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.includes('event: message.routed')) onEvent(performance.now());
        }
      });
      res.on('error', () => undefined);
      resolve(() => res.destroy());
    });
    req.once('error', reject);
    req.end();
  });
}

/**
 * The bare baseline: holds `GET /wait/<destination>` (a long poll) and `GET /stream/<destination>`
 * (an event stream) until `wake(destination)`, then answers each with one feed item.
 */
export async function startBareServer(): Promise<{ port: number; held: () => number; wake: (d: string) => void }> {
  const polls = new Map<string, ServerResponse[]>();
  const streams = new Map<string, Set<ServerResponse>>();
  let seq = 0;
  const server = createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
    const [, kind, destination] = (req.url ?? '').split('/');
    if (!destination) return res.writeHead(404).end();
    if (kind === 'wait') {
      const list = polls.get(destination) ?? [];
      list.push(res);
      polls.set(destination, list);
    } else {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      const set = streams.get(destination) ?? new Set();
      set.add(res);
      streams.set(destination, set);
      res.once('close', () => set.delete(res));
    }
  });
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  addCleanup(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return {
    port: (server.address() as AddressInfo).port,
    held: () =>
      [...polls.values()].reduce((n, l) => n + l.length, 0) + [...streams.values()].reduce((n, s) => n + s.size, 0),
    wake(destination) {
      seq += 1;
      const item = { seq, id: destination, subject: `Message ${seq}`, receivedAt: new Date().toISOString() };
      const waiting = polls.get(destination) ?? [];
      polls.delete(destination);
      const body = JSON.stringify({ messages: [item], next: seq });
      for (const res of waiting) res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      const event = `id: ${seq}\nevent: message.routed\ndata: ${JSON.stringify(item)}\n\n`;
      for (const res of streams.get(destination) ?? []) res.write(event);
    },
  };
}
