/**
 * The baseline of the scale benchmark, run as a process of its own: bare imapflow clients, one
 * per account, each in IDLE on INBOX, connecting 32 at a time (Mailroom's default connect gate).
 * Prints JSON lines on stdout: {"connected": n, "ms": t} once all are idling, then
 * {"exists": user, "at": epochMs} for every new-message notice.
 *
 *   BENCH_IMAP_PORT=… BENCH_USERS=user1,user2,… BENCH_PASSWORD=… node --import tsx bench/support/idle-clients.ts
 */
import { performance } from 'node:perf_hooks';
import { ImapFlow } from 'imapflow';
import PQueue from 'p-queue';

const port = Number(process.env.BENCH_IMAP_PORT);
const users = (process.env.BENCH_USERS ?? '').split(',').filter(Boolean);
const password = process.env.BENCH_PASSWORD ?? '';
const started = performance.now();
const gate = new PQueue({ concurrency: 32 });
const clients: ImapFlow[] = [];

await Promise.all(
  users.map((user) =>
    gate.add(async () => {
      const client = new ImapFlow({
        host: '127.0.0.1',
        port,
        secure: false,
        auth: { user, pass: password },
        logger: false,
        disableAutoIdle: true,
      });
      await client.connect();
      await client.mailboxOpen('INBOX');
      client.on('exists', () => {
        process.stdout.write(`${JSON.stringify({ exists: user, at: Date.now() })}\n`);
        void client.idle().catch(() => undefined);
      });
      void client.idle().catch(() => undefined);
      clients.push(client);
    }),
  ),
);
process.stdout.write(`${JSON.stringify({ connected: clients.length, ms: performance.now() - started })}\n`);
process.on('SIGTERM', () => {
  for (const c of clients) c.close();
  process.exit(0);
});
