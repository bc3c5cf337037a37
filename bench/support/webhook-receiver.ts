/**
 * A plain webhook receiver in a process of its own (so that neither side measured shares its
 * event loop): node:http on 127.0.0.1, keep-alive, answers every POST `200` with an empty body at
 * once and counts distinct `Idempotency-Key`s (a batch's events by their own keys). Driven over IPC by the parent:
 *
 *   parent → { type: 'expect', count }   start counting anew; report when `count` keys arrived
 *   child  → { type: 'listening', port } once, at start
 *   child  → { type: 'armed' }           the expectation is set (POSTs from now on count)
 *   child  → { type: 'done', posts, connections }  when the expected keys arrived (POSTs and
 *                                        connections received meanwhile)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

type FromParent = { type: 'expect'; count: number };

let keys = new Set<string>();
let posts = 0;
let connections = 0;
let expected = Number.POSITIVE_INFINITY;

const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
  // A batch (`message.routed.batch`) counts each of its events by the event's own key.
  const batch = req.headers['x-mailroom-event'] === 'message.routed.batch';
  const chunks: Buffer[] = [];
  if (batch) req.on('data', (c: Buffer) => chunks.push(c));
  else req.resume();
  req.on('end', () => {
    posts += 1;
    const key = req.headers['idempotency-key'];
    if (batch) {
      const { events } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: Array<{ id: string }> };
      for (const e of events) keys.add(e.id);
    } else if (typeof key === 'string') keys.add(key);
    res.writeHead(200, { 'content-length': '0' }).end();
    if (keys.size >= expected) {
      expected = Number.POSITIVE_INFINITY;
      process.send?.({ type: 'done', posts, connections });
    }
  });
});

process.on('message', (m: FromParent) => {
  if (m.type !== 'expect') return;
  keys = new Set();
  posts = 0;
  connections = 0;
  expected = m.count;
  process.send?.({ type: 'armed' });
});
process.on('disconnect', () => process.exit(0));

server.on('connection', () => (connections += 1));
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'listening', port: (server.address() as AddressInfo).port });
});
