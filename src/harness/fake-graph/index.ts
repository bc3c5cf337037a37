/**
 * A fake Microsoft Graph (mail): delta queries with next and delta links, MIME sources, read,
 * move, delete, sendMail with MIME, 429 throttling and 410 resets on demand. Start one with
 * `startFakeGraph()`.
 */
export { startFakeGraph } from './server.js';
export type { FakeGraph, FakeGraphOptions, GraphFault, GraphRequestRecord } from './server.js';
export type { FakeMessage } from './mail-store.js';
