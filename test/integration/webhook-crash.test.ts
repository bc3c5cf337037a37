import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccounts } from '../../src/accounts/index.js';
import { AddressPolicy } from '../../src/shared/address-policy.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import { Store } from '../../src/store/store.js';
import { createTestDatabase, quietLogger } from '../support/database.js';
import { eventually } from '../support/mail.js';
import { freePort, startEngineProcess, waitForHttp } from '../support/processes.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';
import { routeMessages } from '../support/routed-messages.js';

const EVENTS = 400;

/**
 * The engine process is killed (SIGKILL) in the middle of a destination's webhook run, and
 * started again: every event reaches the receiver, each first taken in seq order, and every
 * event posted twice carries the same Idempotency-Key both times.
 */
describe('webhooks across a SIGKILL mid-run (engine process, PostgreSQL)', function () {
  this.timeout(180_000);
  let store: Store;
  let dir: string;
  let receiver: Server;
  let engine: { child: ChildProcess; output: () => string } | undefined;
  const posts: Array<{ key: string; seq: number }> = [];

  before(async function () {
    skipWithout(this, await postgresMissing());
  });
  after(async () => {
    if (engine && engine.child.exitCode === null && engine.child.signalCode === null) {
      engine.child.kill('SIGKILL');
      await once(engine.child, 'exit');
    }
    receiver?.close();
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loses nothing and repeats only under the same key', async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { seq: number };
        posts.push({ key: req.headers['idempotency-key'] as string, seq: body.seq });
        // A little slower than at once: the run is still going when the kill comes.
        setTimeout(() => res.writeHead(200).end(), 2);
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;

    const key = randomBytes(32);
    const databaseUrl = await createTestDatabase();
    store = await Store.open({ databaseUrl }, quietLogger);
    // The receiver is on this machine: allowed here as MAILROOM_WEBHOOK_ALLOW_PRIVATE allows it in the engine.
    const accounts = createAccounts(store, new SecretSealer(key), quietLogger, {
      webhookAddresses: AddressPolicy.allowPrivate(),
    });
    const tenant = await accounts.tenants.create({ name: 'Crash' });
    const server = await accounts.servers.create(tenant.id, {
      name: 'Main',
      enabled: false,
      imap: { host: '127.0.0.1', port: 1, secure: false, user: 'crash', auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    });
    const destination = await accounts.destinations.create(tenant.id, {
      name: 'Hooked',
      address: 'hooked@crash.example',
      serverId: server.id,
      webhookUrl: url,
      webhookSecret: 'crash-webhook-secret-0123456789',
    });
    const seqs = await routeMessages(
      store,
      { tenantId: tenant.id, serverId: server.id, destinationId: destination.id },
      EVENTS,
    );

    dir = await mkdtemp(join(tmpdir(), 'mailroom-webhook-crash-'));
    const start = async (): Promise<void> => {
      const port = await freePort();
      engine = startEngineProcess(
        {
          MAILROOM_DATABASE_URL: databaseUrl,
          MAILROOM_SECRET_KEY: key.toString('base64'),
          MAILROOM_API_TOKEN: 'crash-test-token',
          MAILROOM_HTTP_PORT: String(port),
          MAILROOM_DATA_DIR: join(dir, 'data'),
          MAILROOM_SPOOL_DIR: join(dir, 'spool'),
          MAILROOM_LOG_LEVEL: 'warn',
          MAILROOM_WEBHOOK_TIMEOUT_MS: '1000',
          MAILROOM_WEBHOOK_ALLOW_PRIVATE: 'true',
        },
        dir,
      );
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, 90_000, engine.child);
    };

    await start();
    await eventually(async () => (posts.length >= EVENTS / 4 ? true : undefined), 60_000, 5);
    const running = engine as { child: ChildProcess; output: () => string };
    running.child.kill('SIGKILL');
    await once(running.child, 'exit');
    const beforeKill = posts.length;
    assert.ok(beforeKill < EVENTS, `killed mid-run (${beforeKill} of ${EVENTS} posted)`);

    // The lease of the killed run lapses (5 s run budget + 1 s timeout + 5 s), then all goes on.
    await start();
    await eventually(async () => (new Set(posts.map((p) => p.seq)).size === EVENTS ? true : undefined), 90_000, 50);

    const first: number[] = [];
    const seen = new Set<number>();
    for (const p of posts) {
      assert.equal(p.key, `${destination.id}:${p.seq}`, 'a repeat carries the same Idempotency-Key');
      if (!seen.has(p.seq)) {
        seen.add(p.seq);
        first.push(p.seq);
      }
    }
    assert.deepEqual(first, seqs, 'every event first taken in seq order, none lost');
    await eventually(async () => {
      const rows = await store.query<{ n: string }>(
        'SELECT count(*) AS n FROM webhook_deliveries WHERE delivered_at IS NULL AND destination_id = $1',
        [destination.id],
      );
      return Number(rows[0]?.n) === 0 ? true : undefined;
    }, 20_000);
  });
});
