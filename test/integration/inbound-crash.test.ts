import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { createAccounts } from '../../src/accounts/index.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import { Store } from '../../src/store/store.js';
import { createTestDatabase, quietLogger } from '../support/database.js';
import { startDovecot, type DovecotInstance } from '../support/dovecot.js';
import { eventually, rawMail } from '../support/mail.js';
import { freePort, startEngineProcess, waitForHttp } from '../support/processes.js';
import { dovecotMissing, postgresMissing, skipWithout } from '../support/requirements.js';

const MESSAGES = 500;
const KILLS = 20;

/**
 * Crash safety: the engine is killed with SIGKILL at random moments while it ingests 500
 * messages from Dovecot, 20 times, and restarted each time. In the end every message is
 * routed exactly once: the message, its delivery and the checkpoint commit together.
 */
describe('inbound crash safety (SIGKILL during ingestion)', function () {
  this.timeout(300_000);
  let dovecot: DovecotInstance;
  let store: Store;
  let dir: string;
  let env: Record<string, string>;

  before(async function () {
    skipWithout(this, dovecotMissing() ?? (await postgresMissing()));
    dovecot = await startDovecot({ users: [{ user: 'crash@example.com', password: 'pw' }] });
    const key = randomBytes(32);
    env = {
      MAILROOM_DATABASE_URL: await createTestDatabase(),
      MAILROOM_SECRET_KEY: key.toString('base64'),
      MAILROOM_API_TOKEN: 'crash-test-token',
      MAILROOM_HTTP_PORT: '0',
      MAILROOM_LOG_LEVEL: 'warn',
      MAILROOM_RECONCILE_INTERVAL_MS: '200',
      // Small batches: many commits, so that kills land between and during them.
      MAILROOM_IMAP_BATCH_MESSAGES: '10',
    };
    store = await Store.open({ databaseUrl: env.MAILROOM_DATABASE_URL }, quietLogger);
    const accounts = createAccounts(store, new SecretSealer(key), quietLogger);
    const tenant = await accounts.tenants.create({ name: 'Crash' });
    const server = await accounts.servers.create(tenant.id, {
      name: 'Crash box',
      imap: {
        host: dovecot.host,
        port: dovecot.port,
        secure: false,
        user: 'crash@example.com',
        auth: { method: 'password', password: 'pw' },
      },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    });
    await accounts.destinations.create(tenant.id, {
      name: 'Support',
      address: 'support@example.com',
      serverId: server.id,
    });
    const client = new ImapFlow({
      host: dovecot.host,
      port: dovecot.port,
      secure: false,
      auth: { user: 'crash@example.com', pass: 'pw' },
      logger: false,
    });
    await client.connect();
    for (let i = 0; i < MESSAGES; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, MESSAGES - i) }, (_, n) =>
          client.append('INBOX', rawMail({ subject: `crash ${i + n}`, messageId: `crash-${i + n}@test` })),
        ),
      );
    }
    await client.logout();
    dir = await mkdtemp(join(tmpdir(), 'mailroom-crash-'));
  });

  after(async () => {
    await store?.close();
    await dovecot?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function routedCount(): Promise<number> {
    const rows = await store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_deliveries');
    return Number(rows[0]?.n ?? 0);
  }

  it(`routes every message exactly once across ${KILLS} kills`, async () => {
    const progress: number[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      const port = await freePort();
      const { child } = startEngineProcess({ ...env, MAILROOM_HTTP_PORT: String(port) }, dir);
      // Once this run has committed something (or after 3 s), kill it within the next 150 ms.
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, child);
      const before = await routedCount();
      await eventually(async () => ((await routedCount()) > before ? true : undefined), 3_000, 20).catch(
        () => undefined,
      );
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 150));
      child.kill('SIGKILL');
      await once(child, 'exit');
      progress.push(await routedCount());
    }
    const { child, output } = startEngineProcess(env, dir);
    try {
      await eventually(async () => ((await routedCount()) >= MESSAGES ? true : undefined), 120_000, 200);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    process.stdout.write(`      routed after each kill: ${progress.join(', ')}\n`);
    assert.ok(
      progress.some((n) => n > 0 && n < MESSAGES),
      `some kill landed during ingestion: ${progress.join(', ')}`,
    );
    const perMessage = await store.query<{ message_id_header: string; n: string }>(
      `SELECT m.message_id_header, count(*) AS n FROM inbound_deliveries d
         JOIN inbound_messages m ON m.id = d.message_id GROUP BY m.message_id_header`,
    );
    assert.equal(perMessage.length, MESSAGES, output());
    assert.ok(
      perMessage.every((r) => Number(r.n) === 1),
      'no message routed twice',
    );
    const seqs = await store.query<{ max: string; n: string }>(
      'SELECT max(seq) AS max, count(*) AS n FROM inbound_deliveries',
    );
    assert.equal(Number(seqs[0]?.max), MESSAGES, 'the cursor has no gaps');
  });
});
