import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../src/config/config.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { Engine } from '../../src/main.js';
import { createTestDatabase } from '../support/database.js';
import { capturingLogger } from '../support/log-capture.js';
import { eventually } from '../support/mail.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * A graceful stop while an agent long-polls: the poll must not use up the shutdown timeout and
 * leave the later steps (watchers, leases, outbound) running under a closed database.
 */
describe('engine stop with a long poll open (whole engine, PostgreSQL)', function () {
  this.timeout(120_000);
  let imap: FakeImapServer;
  let smtp: SmtpHarness;
  let dir: string;
  const token = 'shutdown-token';

  before(async function () {
    skipWithout(this, await postgresMissing());
    dir = await mkdtemp(join(tmpdir(), 'mailroom-shutdown-'));
  });

  after(async () => {
    await smtp?.close();
    await imap?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers the poll as "nothing new", then stops every step in order and leaves no instance row', async () => {
    const user = { user: 'support@example.com', password: 'support' };
    imap = await startFakeImap({ users: [user] });
    smtp = await startSmtpHarness({ users: [user] });
    const databaseUrl = await createTestDatabase();
    const config = loadConfig(
      {
        MAILROOM_DATABASE_URL: databaseUrl,
        MAILROOM_SECRET_KEY: randomBytes(32).toString('base64'),
        MAILROOM_API_TOKEN: token,
        MAILROOM_HTTP_PORT: '0',
        MAILROOM_SPOOL_DIR: join(dir, 'spool'),
        MAILROOM_TEMPLATES_DIR: join(dir, 'templates'),
        MAILROOM_SHUTDOWN_TIMEOUT_MS: '1000',
        MAILROOM_RECONCILE_INTERVAL_MS: '200',
      },
      dir,
    );
    const { logger, lines } = capturingLogger('debug');
    const engine = new Engine(config, logger);
    await engine.start();
    const base = `http://127.0.0.1:${engine.httpAddress.port}/api/v1`;
    const api = async (method: string, path: string, body?: unknown): Promise<Obj> => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      return (await res.json()) as Obj;
    };
    const tenant = (await api('POST', '/tenants', { name: 'Shutdown' })).id as string;
    const server = await api('POST', `/tenants/${tenant}/servers`, {
      name: 'Main mailbox',
      imap: {
        host: '127.0.0.1',
        port: imap.port,
        secure: false,
        user: user.user,
        auth: { method: 'password', password: 'support', confirmPassword: 'support' },
      },
      smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'imap' } },
    });
    const dest = await api('POST', `/tenants/${tenant}/destinations`, {
      name: 'Support',
      address: user.user,
      serverId: server.id,
    });

    const polled = fetch(`${base}/tenants/${tenant}/destinations/${dest.id}/messages?after=999&wait=30`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const signals = engine.inboundService.signals;
    await eventually(async () => (signals.waiting > 0 ? true : undefined)); // the poll is waiting
    const stopping = engine.stop();
    const poll = await polled;
    assert.equal(poll.status, 200);
    assert.deepEqual(await poll.json(), { messages: [], next: 999 });
    await stopping;

    const done = lines.map((l) => JSON.parse(l) as Obj);
    const at = (match: (l: Obj) => boolean): number => done.findIndex(match);
    const closed = at((l) => l.msg === 'database closed');
    assert.ok(closed >= 0, 'the database is closed');
    for (const step of ['api', 'inbound', 'leases', 'webhooks', 'outbound']) {
      const finished = at((l) => l.step === step && l.msg === 'shutdown step done');
      assert.ok(finished >= 0 && finished < closed, `${step} stopped before the database closed`);
    }
    assert.deepEqual(
      ['api', 'inbound', 'leases', 'webhooks', 'outbound'].map((step) => at((l) => l.step === step)),
      ['api', 'inbound', 'leases', 'webhooks', 'outbound']
        .map((step) => at((l) => l.step === step))
        .sort((a, b) => a - b),
      'the steps stop in order',
    );
    assert.equal(
      done.filter((l) => l.level >= 50).length,
      0,
      `nothing failed: ${lines.filter((l) => /"level":[56]/.test(l)).join('\n')}`,
    );

    const c = new pg.Client({ connectionString: databaseUrl });
    await c.connect();
    try {
      assert.equal((await c.query('SELECT 1 FROM engine_instances')).rowCount, 0, 'the instance left the cluster');
      assert.equal((await c.query('SELECT 1 FROM server_leases')).rowCount, 0, 'the leases were given back');
    } finally {
      await c.end();
    }
  });
});
